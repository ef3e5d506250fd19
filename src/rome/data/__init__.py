"""Datasets: raw sources, fixed stratified splits, the prepared-data artifact, torch datasets."""
