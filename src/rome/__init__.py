"""ROME: memory-efficient differentiable NAS (ICCV 2023) as a reproducible pipeline."""

__version__ = "0.1.0"
