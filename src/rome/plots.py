"""Figures. Cell pictures: nodes, edges and op names, drawn with networkx + matplotlib (no graphviz binary).

Each function builds its own ``Figure`` (no pyplot global state, safe in tests and workers) and
writes the PNG atomically; PNG metadata carries no date so a re-derive gives identical bytes.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import networkx as nx  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from rome.artifacts import write_bytes  # noqa: E402
from rome.genotype.types import DARTS_INPUTS, ENTRIES_PER_NODE, AnyGenotype, Genotype, NB201Genotype  # noqa: E402
from rome.spaces.ops import PARAMETER_FREE_OPS  # noqa: E402

PARAM_FREE_COLOUR = "#d62728"  # parameter-free ops stand out: they are what a collapsed cell fills up with
PARAM_COLOUR = "#1f77b4"
NONE_COLOUR = "#aaaaaa"
NODE_SIZE = 1100


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return write_bytes(path, buf.getvalue())


def _draw(graph: nx.MultiDiGraph, pos: dict[str, tuple[float, float]], title: str, path: Path) -> Path:
    """Nodes with their names; every edge on its own arc (parallel edges fan out) labelled by its op."""
    xs, ys = [x for x, _ in pos.values()], [y for _, y in pos.values()]
    fig = Figure(figsize=(2.2 * (max(xs) - min(xs)) + 2.5, 1.3 * (max(ys) - min(ys)) + 2.0))
    ax = fig.subplots()
    ax.set_title(title, fontsize=11)
    ax.axis("off")
    colours = [graph.nodes[n].get("colour", "#ffffff") for n in graph.nodes]
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=colours, edgecolors="black", node_size=NODE_SIZE)
    nx.draw_networkx_labels(graph, pos, ax=ax, font_size=9)
    seen: Counter[tuple[str, str]] = Counter()
    for u, v, data in graph.edges(data=True):
        k = seen[(u, v)]
        seen[(u, v)] += 1
        rad = 0.12 + 0.22 * k
        op = data.get("op")
        colour = (NONE_COLOUR if op == "none" else PARAM_FREE_COLOUR if op in PARAMETER_FREE_OPS
                  else PARAM_COLOUR) if op else "#555555"
        nx.draw_networkx_edges(graph, pos, edgelist=[(u, v)], ax=ax, edge_color=colour, arrows=True,
                               arrowsize=14, node_size=NODE_SIZE, connectionstyle=f"arc3,rad={rad}",
                               style="dashed" if op in (None, "none") else "solid")
        if op:
            (x1, y1), (x2, y2) = pos[u], pos[v]
            # midpoint of matplotlib's arc3 Bezier: chord midpoint + rad/2 * (dy, -dx)
            lx, ly = (x1 + x2) / 2 + rad / 2 * (y2 - y1), (y1 + y2) / 2 - rad / 2 * (x2 - x1)
            ax.text(lx, ly, op, fontsize=7, color=colour, ha="center", va="center",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
    return _save(fig, path)


def plot_darts_cell(entries: Sequence[tuple[str, int]], concat: Sequence[int], path: str | Path,
                    title: str = "cell") -> Path:
    """A DARTS cell: inputs c_{k-2}, c_{k-1}, intermediate nodes 0..n-1, output c_{k} (concat)."""
    steps = len(entries) // ENTRIES_PER_NODE
    names = ["$c_{k-2}$", "$c_{k-1}$", *[str(m) for m in range(steps)]]
    out = "$c_{k}$"
    graph = nx.MultiDiGraph()
    # inputs left, intermediate nodes on a descending diagonal (short node-to-node edges), output right
    top = 0.75 * (steps - 1)
    pos: dict[str, tuple[float, float]] = {names[0]: (0.0, top / 2 + 0.8), names[1]: (0.0, -top / 2 - 0.8)}
    for m in range(steps):
        pos[names[DARTS_INPUTS + m]] = (1.6 + 0.55 * m, top - 1.5 * m)
    pos[out] = (1.6 + 0.55 * steps + 1.2, 0.0)
    for n in names[:DARTS_INPUTS]:
        graph.add_node(n, colour="#c7e9c0")
    for n in names[DARTS_INPUTS:]:
        graph.add_node(n, colour="#fdd0a2")
    graph.add_node(out, colour="#fff5b1")
    for i, (op, src) in enumerate(entries):
        graph.add_edge(names[src], names[DARTS_INPUTS + i // ENTRIES_PER_NODE], op=op)
    for c in concat:
        graph.add_edge(names[c], out)
    return _draw(graph, pos, title, Path(path))


def plot_nb201_cell(genotype: NB201Genotype, path: str | Path, title: str = "NAS-Bench-201 cell") -> Path:
    """An NB201 cell: nodes 0..n, an op on every edge j -> i (``none`` edges dashed grey)."""
    n_nodes = len(genotype.nodes) + 1
    graph = nx.MultiDiGraph()
    pos = {str(i): (float(i), 0.8 if i % 2 else -0.8) for i in range(n_nodes)}
    pos["0"], pos[str(n_nodes - 1)] = (0.0, 0.0), (float(n_nodes - 1), 0.0)
    for i in range(n_nodes):
        graph.add_node(str(i), colour="#c7e9c0" if i == 0 else "#fff5b1" if i == n_nodes - 1 else "#fdd0a2")
    for src, dst, op in genotype.edges():
        graph.add_edge(str(src), str(dst), op=op)
    return _draw(graph, pos, f"{title}\n{genotype.to_arch_str()}", Path(path))


def plot_genotype(genotype: AnyGenotype, folder: str | Path, title: str = "") -> list[Path]:
    """One PNG per cell type: ``normal.png`` + ``reduce.png`` (DARTS) or ``cell.png`` (NB201)."""
    folder = Path(folder)
    prefix = f"{title}: " if title else ""
    if isinstance(genotype, NB201Genotype):
        return [plot_nb201_cell(genotype, folder / "cell.png", f"{prefix}NAS-Bench-201 cell")]
    assert isinstance(genotype, Genotype)
    counts = genotype.n_param_free()
    return [plot_darts_cell(*genotype.cell(kind), folder / f"{kind}.png",
                            f"{prefix}{kind} cell ({counts[kind]} parameter-free ops)")
            for kind in ("normal", "reduce")]
