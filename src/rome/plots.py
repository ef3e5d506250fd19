"""Cell pictures drawn the way the DARTS and ROME papers draw cells, with matplotlib alone.

Layout: the cell inputs on the left (c_{k-2} above, c_{k-1} below for DARTS cells; node 0 for
NB201), the intermediate nodes left to right in their order on one line, the output on the right.
Every edge is a curve that clears the nodes it passes (edges between neighbours are straight,
longer ones arc above or below the line, parallel edges fan out); each edge carries one label,
placed along its curve where it overlaps no other label and no node. Ops with parameters are
blue, parameter-free ops (skip, pools, noise) orange, ``none`` grey and dashed.

Each function builds its own ``Figure`` (no pyplot global state, safe in tests and workers) and
writes the PNG atomically; PNG metadata carries no date so a re-derive gives identical bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from rome.artifacts import write_bytes  # noqa: E402
from rome.genotype.types import DARTS_INPUTS, ENTRIES_PER_NODE, NONE_OP, AnyGenotype, Genotype, NB201Genotype  # noqa: E402
from rome.spaces.ops import PARAMETER_FREE_OPS  # noqa: E402

PARAM_COLOUR = "#1f5fa8"  # ops with weights
PARAM_FREE_COLOUR = "#e06c00"  # what a collapsed cell fills up with
NONE_COLOUR = "#9a9a9a"
CONCAT_COLOUR = "#555555"
INPUT_FILL, NODE_FILL, OUTPUT_FILL = "#c7e9c0", "#dbe7f5", "#fff2a8"
RADIUS = 0.34  # node radius, data units
SPACING = 2.4  # distance between neighbouring nodes on the line
ARC = 0.3  # arc3 curvature of an edge that must clear the nodes between its ends
MIN_WIDTH_IN = 7.5  # NB201 titles carry the arch string
CROSSING_COST = 0.01  # per point of another curve under a label: labels prefer free space
OVERLAP_COST = 100.0  # per square unit of a label over another label or a node: avoided first
LABEL_SPOTS = (0.5, 0.4, 0.6, 0.32, 0.68, 0.25, 0.75, 0.45, 0.55, 0.2, 0.8)  # where along a curve a label may sit


@dataclass
class Edge:
    src: str
    dst: str
    label: str | None  # the op; None for the unlabelled concat edges
    rad: float  # arc3 curvature: 0 straight, < 0 bulges up for a left-to-right edge


def op_colour(op: str | None) -> str:
    if op is None:
        return CONCAT_COLOUR
    if op == NONE_OP:
        return NONE_COLOUR
    return PARAM_FREE_COLOUR if op in PARAMETER_FREE_OPS else PARAM_COLOUR


def _bezier(p0: tuple[float, float], p2: tuple[float, float], rad: float, t: float) -> tuple[float, float]:
    """Point ``t`` of matplotlib's ``arc3`` curve (a quadratic Bezier; the axes have equal aspect)."""
    (x0, y0), (x2, y2) = p0, p2
    cx, cy = (x0 + x2) / 2 + rad * (y2 - y0), (y0 + y2) / 2 - rad * (x2 - x0)
    u = 1 - t
    return u * u * x0 + 2 * u * t * cx + t * t * x2, u * u * y0 + 2 * u * t * cy + t * t * y2


def _overlap(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _side_rad(side: int, src_x: float, dst_x: float, strength: float = ARC) -> float:
    """arc3 curvature that bulges ``side`` (+1 up, -1 down) whichever way the edge runs."""
    return -side * strength if dst_x >= src_x else side * strength


def _draw(pos: dict[str, tuple[float, float]], fills: dict[str, str], names: dict[str, str], edges: list[Edge],
          title: str, path: Path) -> Path:
    curves = {id(e): [_bezier(pos[e.src], pos[e.dst], e.rad, t / 40) for t in range(41)] for e in edges}
    points = list(pos.values()) + [p for c in curves.values() for p in c]
    xs, ys = [x for x, _ in points], [y for _, y in points]
    scale = 0.62  # inches per data unit
    half_width = max((max(xs) - min(xs)) / 2 + 0.8, MIN_WIDTH_IN / scale / 2)  # wide enough for the title
    x0, x1 = (max(xs) + min(xs)) / 2 - half_width, (max(xs) + min(xs)) / 2 + half_width
    y0, y1 = min(ys) - 1.1, max(ys) + 0.7  # room for the labels above, the legend below
    header = 0.25 + 0.2 * (title.count("\n") + 1)  # inches for the title
    fig = Figure(figsize=((x1 - x0) * scale, (y1 - y0) * scale + header))
    ax: Axes = fig.add_axes((0, 0, 1, (y1 - y0) * scale / ((y1 - y0) * scale + header)))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.suptitle(title, fontsize=10, y=0.99, va="top")
    for node, (x, y) in pos.items():
        ax.add_patch(Circle((x, y), RADIUS, facecolor=fills[node], edgecolor="black", linewidth=1.0, zorder=3))
        ax.text(x, y, names[node], ha="center", va="center", fontsize=10, zorder=4)
    renderer = FigureCanvasAgg(fig).get_renderer()  # measures the labels' boxes
    to_data = ax.transData.inverted()
    taken = [Bbox.from_extents(x - RADIUS, y - RADIUS, x + RADIUS, y + RADIUS) for x, y in pos.values()]
    for edge in edges:
        colour = op_colour(edge.label)
        dashed = edge.label is None or edge.label == NONE_OP
        ax.add_patch(FancyArrowPatch(pos[edge.src], pos[edge.dst], connectionstyle=f"arc3,rad={edge.rad}",
                                     arrowstyle="-|>,head_length=5,head_width=2.6", color=colour, linewidth=1.3,
                                     linestyle=(0, (4, 3)) if dashed else "-", shrinkA=13.5, shrinkB=13.5, zorder=2))
    for edge in edges:  # labels after all curves, each where it overlaps least (nothing, when it can)
        if edge.label is None:
            continue
        best: tuple[float, object] | None = None
        for t in LABEL_SPOTS:
            x, y = _bezier(pos[edge.src], pos[edge.dst], edge.rad, t)
            text = ax.text(x, y, edge.label.replace("_", " "), fontsize=7.5, color=op_colour(edge.label),
                           ha="center", va="center", zorder=5,
                           bbox={"boxstyle": "round,pad=0.18", "fc": "white", "ec": op_colour(edge.label),
                                 "lw": 0.6, "alpha": 0.95})
            box = text.get_window_extent(renderer).transformed(to_data).expanded(1.15, 1.9)  # + the round box
            crossings = sum(box.contains(px, py) for other in edges if other is not edge for px, py in curves[id(other)])
            cost = OVERLAP_COST * sum(_overlap(box, other) for other in taken) + CROSSING_COST * crossings
            if best is None or cost < best[0]:
                if best is not None:
                    best[1][1].remove()  # type: ignore[index]
                best = (cost, (box, text))
            else:
                text.remove()
            if cost == 0:
                break
        assert best is not None
        taken.append(best[1][0])  # type: ignore[index]
    handles = [Line2D([], [], color=PARAM_COLOUR, lw=1.5, label="op with parameters"),
               Line2D([], [], color=PARAM_FREE_COLOUR, lw=1.5, label="parameter-free op")]
    if any(e.label == NONE_OP for e in edges):
        handles.append(Line2D([], [], color=NONE_COLOUR, lw=1.5, ls=(0, (4, 3)), label="none (no edge)"))
    if any(e.label is None for e in edges):
        handles.append(Line2D([], [], color=CONCAT_COLOUR, lw=1.2, ls=(0, (4, 3)), label="concatenated into the output"))
    ax.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7.5, frameon=False,
              bbox_to_anchor=(0.5, 0.0))
    return _save(fig, path)


def save_png(fig: Figure, path: Path) -> Path:
    """The figure as a PNG written atomically, with no Software/date metadata: same inputs, same bytes."""
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, metadata={"Software": None})
    return write_bytes(path, buf.getvalue())


class _Sides:
    """Which side of the node line a long edge bulges to: the side with fewer long edges so far."""

    def __init__(self) -> None:
        self.count = {1: 0, -1: 0}

    def pick(self, prefer: int = 1) -> int:
        side = prefer if self.count[prefer] <= self.count[-prefer] else -prefer
        self.count[side] += 1
        return side


def plot_darts_cell(entries: Sequence[tuple[str, int]], concat: Sequence[int], path: str | Path,
                    title: str = "cell") -> Path:
    """A DARTS cell: inputs c_{k-2} (above) and c_{k-1} (below) on the left, nodes 0..n-1, output c_{k}."""
    steps = len(entries) // ENTRIES_PER_NODE
    states = ["in0", "in1", *[f"n{m}" for m in range(steps)]]
    names = {"in0": "$c_{k-2}$", "in1": "$c_{k-1}$", "out": "$c_{k}$", **{f"n{m}": str(m) for m in range(steps)}}
    pos = {"in0": (0.0, 1.5), "in1": (0.0, -1.5)}
    for m in range(steps):
        pos[f"n{m}"] = (SPACING * (m + 1), 0.0)
    pos["out"] = (SPACING * (steps + 1), 0.0)
    fills = {s: INPUT_FILL if s.startswith("in") else NODE_FILL for s in states} | {"out": OUTPUT_FILL}
    sides, edges, seen = _Sides(), [], {}
    for i, (op, src) in enumerate(entries):
        dst = DARTS_INPUTS + i // ENTRIES_PER_NODE
        u, v = states[src], states[dst]
        parallel = seen.get((u, v), 0)
        seen[(u, v)] = parallel + 1
        if src < DARTS_INPUTS:  # from the left: c_{k-2} arcs over the line, c_{k-1} under it, farther nodes wider
            side = (1 if src == 0 else -1) * (-1 if parallel else 1)  # a second edge from the same input: other side
            span = dst - DARTS_INPUTS
            rad = _side_rad(side, 0, 1, 0.06 + 0.045 * span + 0.1 * parallel)
        elif dst == src + 1 and not parallel:  # neighbours on the line: straight
            rad = 0.0
        else:  # longer node-to-node edges arc over the line (the concatenation runs under it)
            rad = _side_rad(1, 0, 1, ARC + 0.1 * (dst - src - 2) + 0.12 * parallel)  # longer: steeper, apart
        edges.append(Edge(u, v, op, rad))
    last = DARTS_INPUTS + steps - 1
    for c in concat:
        rad = 0.0 if c == last else _side_rad(-1, 0, 1, ARC * 0.8)
        edges.append(Edge(states[c], "out", None, rad))
    return _draw(pos, fills, names, edges, title, Path(path))


def plot_nb201_cell(genotype: NB201Genotype, path: str | Path, title: str = "NAS-Bench-201 cell") -> Path:
    """An NB201 cell: node 0 (input) on the left, nodes in order, the last (output) on the right; every edge j -> i."""
    n_nodes = len(genotype.nodes) + 1
    pos = {str(i): (SPACING * i, 0.0) for i in range(n_nodes)}
    names = {str(i): str(i) for i in range(n_nodes)}
    fills = {str(i): INPUT_FILL if i == 0 else OUTPUT_FILL if i == n_nodes - 1 else NODE_FILL for i in range(n_nodes)}
    sides, edges = _Sides(), []
    for src, dst, op in sorted(genotype.edges(), key=lambda e: (e[1] - e[0], e[0])):
        rad = 0.0 if dst == src + 1 else _side_rad(sides.pick(), 0, 1, ARC * (1 + 0.25 * (dst - src - 2)))
        edges.append(Edge(str(src), str(dst), op, rad))
    return _draw(pos, fills, names, edges, f"{title}\n{genotype.to_arch_str()}", Path(path))


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
