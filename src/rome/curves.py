"""Per-run pictures a researcher reads at a glance: loss/accuracy curves and the alpha heatmap.

Search: train and validation loss, and the validation accuracy labelled for what it is (the
weight-sharing supernet's argmax path, not the derived model). Retraining: loss, top-1 and the
learning rate. Alpha: one small panel per cell type, edges down, epochs across, each cell the
probability of the op the edge finally prefers (the op is named on the edge's row), so drift and
collapse show as colour changes. PNGs are written by ``rome.plots.save_png`` (no metadata: same
history, same bytes), so DVC's image plots and the run cache stay stable.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from rome.plots import save_png


def _floats(rows: Sequence[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) if r.get(key) not in (None, "") else float("nan") for r in rows]


def plot_search_curves(history: Sequence[dict[str, Any]], path: Path, stop: Any = None) -> Path:
    """Three panels: train/val loss; the supernet's validation accuracy (and the train batches');
    the collapse indicators (parameter-free share per cell type, and the Hessian eigenvalue on its own
    axis when computed), with the epoch early stopping kept marked."""
    epochs = [int(h["epoch"]) for h in history]
    fig = Figure(figsize=(12, 3.2))
    loss, acc, collapse = fig.subplots(1, 3)
    loss.plot(epochs, _floats(history, "train_loss"), marker="o", ms=3, label="train loss (sampled paths)")
    loss.plot(epochs, _floats(history, "val_loss"), marker="o", ms=3, label="val loss (supernet argmax)")
    loss.set_xlabel("epoch")
    loss.set_ylabel("cross-entropy")
    loss.legend(fontsize=7)
    acc.plot(epochs, [100 * v for v in _floats(history, "val_acc")], marker="o", ms=3, color="C2",
             label="supernet val acc (weight-sharing,\nnot the derived model)")
    acc.plot(epochs, [100 * v for v in _floats(history, "train_acc")], marker=".", ms=3, color="C7", lw=0.8,
             label="train batches acc")
    acc.set_xlabel("epoch")
    acc.set_ylabel("accuracy (%)")
    acc.legend(fontsize=7)
    plot_indicators(collapse, history, stop)
    fig.suptitle("search", fontsize=9)
    fig.tight_layout()
    return save_png(fig, path)


def plot_indicators(ax: Any, history: Sequence[dict[str, Any]], stop: Any = None) -> None:
    """Parameter-free share of the derived cells (left axis) and the Hessian eigenvalue (right axis)."""
    epochs = [int(h["epoch"]) for h in history]
    cell_types = [k[len("param_free_"):] for k in history[-1] if k.startswith("param_free_")]
    for i, ct in enumerate(cell_types):
        ax.plot(epochs, _floats(history, f"param_free_{ct}"), marker="o", ms=3, color=f"C{i}",
                label=f"parameter-free share, {ct}")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("epoch")
    ax.set_ylabel("parameter-free ops / cell")
    eig = [(e, float(h["hessian_eig"])) for e, h in zip(epochs, history) if h.get("hessian_eig") is not None]
    if eig:
        right = ax.twinx()
        right.plot([e for e, _ in eig], [v for _, v in eig], marker="s", ms=3, color="C3", label="Hessian eigenvalue")
        right.set_ylabel("dominant Hessian eigenvalue", color="C3")
        right.legend(fontsize=7, loc="lower right")
    if stop is not None:
        ax.axvline(stop.chosen_epoch, color="k", ls="--", lw=0.8, label=f"kept (early stop at {stop.fired_epoch})")
    if cell_types or stop is not None:
        ax.legend(fontsize=7, loc="upper left")


def plot_train_curves(summary: Sequence[dict[str, Any]], path: Path) -> Path:
    """Three panels from timm's summary.csv rows: loss (train, test), top-1 (train, test), learning rate."""
    epochs = [int(r["epoch"]) + 1 for r in summary]
    fig = Figure(figsize=(10, 3.0))
    loss, top1, lr = fig.subplots(1, 3)
    loss.plot(epochs, _floats(summary, "train_loss"), label="train")
    loss.plot(epochs, _floats(summary, "eval_loss"), label="test")
    loss.set_ylabel("loss")
    top1.plot(epochs, _floats(summary, "train_top1") if "train_top1" in summary[0] else [float("nan")] * len(epochs),
              label="train")
    top1.plot(epochs, _floats(summary, "eval_top1"), label="test")
    top1.set_ylabel("top-1 (%)")
    lr.plot(epochs, _floats(summary, "lr"), color="C3")
    lr.set_ylabel("learning rate")
    for ax in (loss, top1, lr):
        ax.set_xlabel("epoch")
    loss.legend(fontsize=7)
    top1.legend(fontsize=7)
    fig.suptitle("retraining", fontsize=9)
    fig.tight_layout()
    return save_png(fig, path)


def plot_alpha_heatmap(history: Sequence[dict[str, Any]], ops: dict[str, list[list[str]]], path: Path) -> Path:
    """One panel per cell type: rows = edges, columns = epochs, colour = p(the edge's final argmax op)."""
    cell_types = list(history[-1]["alpha"])
    fig = Figure(figsize=(3.2 * len(cell_types) + 0.8, 0.25 * max(len(history[-1]["alpha"][c]) for c in cell_types) + 1.4))
    axes = fig.subplots(1, len(cell_types), squeeze=False)[0]
    image = None
    for ax, ct in zip(axes, cell_types):
        last = history[-1]["alpha"][ct]
        best = [max(range(len(p)), key=p.__getitem__) for p in last]
        grid = [[h["alpha"][ct][e][best[e]] for h in history] for e in range(len(last))]
        image = ax.imshow(grid, aspect="auto", vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest",
                          extent=(0.5, len(history) + 0.5, len(last) - 0.5, -0.5))
        ax.set_yticks(range(len(last)), [f"e{e} {ops[ct][e][best[e]]}" for e in range(len(last))], fontsize=6)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_title(f"{ct} cell", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=list(axes), label="p(final op)", fraction=0.04)
    fig.suptitle("alpha: probability of each edge's final op over the epochs", fontsize=8)
    return save_png(fig, path)
