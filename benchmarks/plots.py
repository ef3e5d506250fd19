"""Curves of per-epoch quantities, one panel per setting, one colour per algorithm (seeds thin, mean bold).

Matplotlib ``Figure`` objects only (no pyplot state); PNG metadata carries no date, so the same
results give the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from rome.artifacts import write_bytes  # noqa: E402

COLOURS = {"rome": "#2ca02c", "gdas": "#ff7f0e", "darts": "#1f77b4", "pc_darts": "#9467bd", "random": "#7f7f7f"}


@dataclass
class Panel:
    """One axes: per algorithm, one y-series per seed (aligned with ``x``), plus horizontal reference lines."""

    title: str
    ylabel: str
    x: Sequence[float]
    series: Mapping[str, Sequence[Sequence[float | None]]]
    references: Mapping[str, float] = field(default_factory=dict)
    ylim: tuple[float, float] | None = None


def series_by_algorithm(runs: Sequence[Mapping[str, object]], key: str) -> dict[str, list[list[float | None]]]:
    """A panel's ``series``: each run's ``key`` list under its algorithm, in the order of ``runs``; runs whose
    list is missing or holds no value (results from before the quantity was recorded) are left out."""
    series: dict[str, list[list[float | None]]] = {}
    for r in runs:
        values = r.get(key)
        if values and any(v is not None for v in values):
            series.setdefault(str(r["algorithm"]), []).append(list(values))
    return series


def _mean(columns: Sequence[Sequence[float | None]]) -> list[float | None]:
    out = []
    for values in zip(*columns):
        vals = [v for v in values if v is not None]
        out.append(sum(vals) / len(vals) if vals else None)
    return out


def curves(panels: Sequence[Panel], path: Path, xlabel: str = "search epoch", columns: int | None = None) -> Path:
    """One axes per panel, in rows of ``columns`` (default: all in one row)."""
    ncols = columns or len(panels)
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(5.2 * ncols, 3.8 * nrows))
    grid = fig.subplots(nrows, ncols, squeeze=False)
    axes = [ax for row in grid for ax in row]
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax, panel in zip(axes, panels):
        for label, seeds in panel.series.items():
            colour = COLOURS.get(label.split(":")[0], None)
            for ys in seeds:
                ax.plot(panel.x[: len(ys)], ys, color=colour, alpha=0.3, linewidth=0.9)
            if seeds:
                mean = _mean(seeds)
                ax.plot(panel.x[: len(mean)], mean, color=colour, linewidth=2.2, label=f"{label} (mean of {len(seeds)})")
        for name, value in panel.references.items():
            colour = COLOURS.get(name.split(" ")[0].lower(), "#444444")
            ax.axhline(value, color=colour, linestyle="--", linewidth=1.0)
            ax.annotate(name, (1.0, value), xycoords=("axes fraction", "data"), fontsize=7, ha="right", va="bottom",
                        color=colour)
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(panel.ylabel)
        if panel.ylim:
            ax.set_ylim(*panel.ylim)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return write_bytes(path, buf.getvalue())
