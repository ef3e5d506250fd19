"""Architecture search: samplers, supernets, algorithms (rome / gdas / darts / random) and the bi-level loop."""
