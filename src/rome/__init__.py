"""ROME: memory-efficient differentiable NAS (ICCV 2023) as a reproducible pipeline."""

from rome.logs import configure_logging

__version__ = "0.1.0"

configure_logging()  # messages on stderr whether a stage runs from the CLI or from Python (rome.logs)
