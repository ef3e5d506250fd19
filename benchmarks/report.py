"""Result documents and the generated README tables shared by every benchmark.

A result is one JSON file (``benchmarks/results/<name>.json``): what ran (command), where
(machine + load), which code (git commit), when, the measured figures and the paper's figures
beside them. Tables are generated from that JSON alone and spliced into ``benchmarks/README.md``
between ``<!-- bench:<name>:begin -->`` / ``<!-- bench:<name>:end -->`` markers, so the README
can never drift from the committed results.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import shlex
import socket
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rome.artifacts import check_schema_version, git_state, read_json, write_json, write_text
from rome.errors import RomeError
from rome.reproducibility import environment

SCHEMA_VERSION = 1
BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
README = BENCH_DIR / "README.md"
REQUIRED_FIELDS = ("schema_version", "benchmark", "command", "machine", "git", "date", "figures", "paper")


def command_line(name: str, argv: Sequence[str] | None) -> str:
    """The command a reader can paste to rerun this benchmark."""
    args = list(argv if argv is not None else sys.argv[1:])
    if name not in args:
        args = [name, *args]
    return "python -m benchmarks " + " ".join(shlex.quote(a) for a in args)


def machine() -> dict[str, Any]:
    """rome's environment facts + hostname + load average (the machine may be shared: say so)."""
    info = dict(environment())
    info["hostname"] = socket.gethostname()
    info["machine"] = platform.machine()
    info["load_average_1_5_15"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return info


def result_document(name: str, command: str, figures: dict[str, Any], paper: dict[str, Any],
                    **extra: Any) -> dict[str, Any]:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "benchmark": name,
        "command": command,
        "machine": machine(),
        "git": git_state(REPO),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "figures": figures,
        "paper": paper,
    }
    doc.update(extra)
    return doc


def check_result(doc: dict[str, Any], source: str | Path) -> None:
    """A result document has every required field (the tests and the table generator rely on it)."""
    missing = [f for f in REQUIRED_FIELDS if f not in doc]
    if missing:
        raise RomeError(f"{source}: missing field(s) {missing}; expected a benchmark result with {list(REQUIRED_FIELDS)}")
    check_schema_version(doc, SCHEMA_VERSION, source, "benchmark result")


def write_result(doc: dict[str, Any], path: Path) -> Path:
    check_result(doc, path)
    return write_json(path, doc)


def load_result(path: Path) -> dict[str, Any]:
    doc = read_json(path, "benchmark result")
    check_result(doc, path)
    return doc


# ----------------------------------------------------------------------------- statistics and formatting


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (0 for a single value); NaN for none."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return math.nan, math.nan
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def fmt(value: Any, digits: int = 2) -> str:
    """Table cell text: numbers rounded, None/NaN as an en dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def pm(mean: float | None, std: float | None, digits: int = 2) -> str:
    if mean is None or not math.isfinite(mean):
        return "–"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if std is not None and math.isfinite(std) else f"{mean:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def provenance_line(doc: dict[str, Any]) -> str:
    """One line under a table: machine, commit, date, load, command."""
    m, g = doc["machine"], doc["git"]
    commit = (g.get("commit") or "unknown")[:10] + (" (dirty)" if g.get("dirty") else "")
    device = m.get("cuda") or f"{m.get('processor')} CPU, {m.get('cpu_count')} cores, {m.get('torch_threads')} torch threads"
    load = m.get("load_average_1_5_15")
    return (f"_Measured {doc['date'][:10]} on `{m.get('hostname')}` ({device}; load average {load}), "
            f"commit `{commit}`, torch {m.get('torch')}, by `{doc['command']}`._")


# ----------------------------------------------------------------------------- README splicing


def markers(key: str) -> tuple[str, str]:
    return f"<!-- bench:{key}:begin -->", f"<!-- bench:{key}:end -->"


def splice(text: str, key: str, body: str) -> str:
    """Replace what lies between the markers of ``key`` (appending the markers when absent)."""
    begin, end = markers(key)
    block = f"{begin}\n{body.strip()}\n{end}"
    i, j = text.find(begin), text.find(end)
    if i < 0 and j < 0:
        return text.rstrip("\n") + "\n\n" + block + "\n"
    if i < 0 or j < i:
        raise RomeError(f"{README}: markers of {key!r} are broken; expected {begin!r} before {end!r}")
    return text[:i] + block + text[j + len(end):]


def update_readme(key: str, body: str, readme: Path = README) -> Path:
    text = readme.read_text() if readme.is_file() else "# Benchmarks\n"
    return write_text(readme, splice(text, key, body))


def timing_line(pipeline: dict[str, Any], budget_minutes: float | None) -> str:
    """The wall time of a pipeline benchmark against its budget, with the machine's load around it."""
    wall = pipeline.get("wall_seconds")
    if not wall:
        return "Pipeline not rerun for this table (outputs reused)."
    verdict = f" (budget {budget_minutes:.0f} min: {'within' if wall / 60 <= budget_minutes else 'OVER'})" if budget_minutes else ""
    return (f"Whole benchmark (`{pipeline.get('command', '')}`): {wall / 60:.1f} min wall{verdict}, load average "
            f"before/after {pipeline.get('load_average_before')} / {pipeline.get('load_average_after')}.")
