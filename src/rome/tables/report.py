"""A table's report: our mean +- std over seeds beside the paper's figure, as Markdown, CSV and a plot.

Everything in it is read from the runs' artifacts (and, for memory and the commit, their run
records in ``state/``); a row whose runs do not exist yet says so, a row that cannot run at this
scale says why. Nothing is typed in by hand, and nothing depends on the clock, so DVC and Snakemake
building the same runs write the same report.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rome.artifacts import read_json
from rome.config import load_params
from rome.csv_text import csv_text
from rome.errors import RomeError
from rome.paths import run_record_path
from rome.rounding import round_value
from rome.tables.definition import BASE_PARAMS_FILE, TABLES_DIR, Metric, Scale, Table
from rome.tables.runs import Run, RowPlan, audit_command, stage_overrides

REPORTS_DIR = Path("reports") / "tables"
SCHEMA_VERSION = 1
# where each metric is read: (stage folder, key in its metrics.json) or a run-record figure
SOURCES = {"top1": ("evaluate", "top1"), "params_m": ("evaluate", "params_m"),
           "test_error": ("evaluate", "top1"), "n_param_free_normal": ("derive", "n_param_free_normal"),
           "nb201_test": ("evaluate", "nb201_*_test"), "nb201_valid": ("evaluate", "nb201_*_valid"),
           "search_memory_gb": ("search", None)}


def report_files(name: str, scale: str) -> list[Path]:
    """``reports/tables/<scale>/<name>.md``, ``.csv`` and ``.png``."""
    base = REPORTS_DIR / scale / name
    return [base.with_suffix(".md"), base.with_suffix(".csv"), base.with_suffix(".png")]


def report_inputs(table: Table, plans: list[RowPlan]) -> list[Path]:
    """The run folders a report reads (its DVC deps / Snakemake inputs)."""
    stages = sorted({SOURCES[m.name][0] for m in table.metrics})
    return sorted({run.folder(s) for plan in plans for run in plan.runs for s in stages})


def _run_params(run: Run, stage: str) -> dict[str, Any]:
    return load_params(str(TABLES_DIR / BASE_PARAMS_FILE), stage_overrides(run, stage))


def read_metric(run: Run, metric: str) -> float | None:
    """One run's value of ``metric``, or None when the run (that stage of it) has not finished."""
    stage, key = SOURCES[metric]
    folder = run.folder(stage)
    if key is None:  # search memory: a measurement, kept in the run record, never in the artifact
        record_file = run_record_path(_run_params(run, "search"), "search", folder)
        if not (folder / "metrics.json").is_file() or not record_file.is_file():
            return None
        peaks = [e["peak_memory_mb"] for e in read_json(record_file, "search run record").get("epochs", [])]
        return max(peaks) / 1024 if peaks else None
    file = folder / "metrics.json"
    if not file.is_file():
        return None
    values = read_json(file, f"{stage} metrics")
    if "*" in key:
        prefix, suffix = key.split("*")
        found = [v for k, v in values.items() if k.startswith(prefix) and k.endswith(suffix)]
        if len(found) != 1:
            raise RomeError(f"{file}: expected one {key} value (is evaluate.benchmark_table set?); found {len(found)}")
        value = float(found[0])
    elif key not in values:
        raise RomeError(f"{file}: no {key!r}; expected the {stage} stage's metrics")
    else:
        value = float(values[key])
    return 100.0 - value if metric == "test_error" else value


def run_commit(run: Run, stage: str) -> str | None:
    """The commit (``+dirty`` when src/ had changes) that ran a run's last stage, from its run record."""
    record_file = run_record_path(_run_params(run, stage), stage, run.folder(stage))
    if not record_file.is_file():
        return None
    git = read_json(record_file, f"{stage} run record").get("git") or {}
    if not git.get("commit"):
        return None
    return git["commit"][:10] + ("+dirty" if git.get("dirty") else "")


@dataclass(frozen=True)
class Cell:
    """One row x metric: our values over the finished seeds and the paper's figure."""

    values: tuple[float, ...]
    planned: int

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None


def _fmt(x: float | None, digits: int = 2) -> str:
    return "" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def _csv_value(metric: str, x: float | None) -> str:
    """A figure for the CSV, with the digits its measurement supports (rome.rounding)."""
    return "" if x is None or math.isnan(x) else str(round_value(metric, float(x)))


def _ours(cell: Cell) -> str:
    if not cell.values:
        return "-"
    text = _fmt(cell.mean) + (f" +- {_fmt(cell.std)}" if cell.std is not None else "")
    return text + (f" ({len(cell.values)}/{cell.planned} seeds)" if len(cell.values) < cell.planned else "")


def collect(table: Table, plans: list[RowPlan]) -> list[dict[str, Any]]:
    """One record per row x metric (what the CSV holds, and the Markdown shows)."""
    final = {"search": "search", "derive": "derive", "evaluate": "evaluate"}[table.until]
    records = []
    for plan in plans:
        row = plan.row
        for metric in table.metrics:
            values = [v for v in (read_metric(r, metric.name) for r in plan.runs) if v is not None]
            cell = Cell(tuple(values), len(plan.runs))
            pub = row.published[metric.name]
            done = [r for r in plan.runs if (r.folder(final) / "metrics.json").is_file()]
            status = (f"not run at this scale: {plan.skipped}" if plan.skipped else
                      "not run yet" if not values else
                      f"{len(values)} of {len(plan.runs)} seeds" if len(values) < len(plan.runs) else "done")
            diff = cell.mean - pub.value if (cell.mean is not None and pub.value is not None) else None
            records.append({
                "row": row.id, "label": row.label, "dataset": row.dataset, "space": row.space,
                "algorithm": row.algorithm, "metric": metric.name, "ours_mean": _csv_value(metric.name, cell.mean),
                "ours_std": _csv_value(metric.name, cell.std), "seeds_done": len(values), "seeds_planned": len(plan.runs),
                "published": "" if pub.value is None else pub.value, "published_std": "" if pub.std is None else pub.std,
                "difference": _csv_value(metric.name, diff), "status": status,
                "runs": ";".join(str(r.root / f"seed{r.seed}") for r in plan.runs),
                "audit": ";".join(audit_command(r, final) for r in done),
                "commits": ";".join(sorted({c for c in (run_commit(r, final) for r in done) if c})),
                "published_source": pub.source, "_cell": cell,
            })
    return records


def render_csv(records: list[dict[str, Any]]) -> str:
    """The report's rows; keys starting with ``_`` (the Markdown's cells) stay out of the CSV."""
    return csv_text(records, [k for k in records[0] if not k.startswith("_")] if records else [])


def render_markdown(table: Table, scale: Scale, records: list[dict[str, Any]]) -> str:
    commits = sorted({c for r in records for c in r["commits"].split(";") if c})
    lines = [f"# {table.title}", "",
             f"- scale: **{scale.name}** ({scale.description})" if scale.description else f"- scale: **{scale.name}**",
             f"- definition: `{table.path}`; paper: {table.source}",
             f"- runs made by commit(s): {', '.join(commits) if commits else 'none yet'}",
             f"- rebuild: `rome table {table.name} --scale {scale.name} --engine dvc` (or `--engine snakemake`)"]
    if table.note:
        lines.append(f"- note: {table.note}")
    for metric in table.metrics:
        lines += ["", f"## {metric.label}", "", "| row | ours (mean +- std) | paper | ours - paper | status |",
                  "|---|---|---|---|---|"]
        for r in (r for r in records if r["metric"] == metric.name):
            paper = "-" if r["published"] == "" else (
                f"{r['published']}" + (f" +- {r['published_std']}" if r["published_std"] != "" else ""))
            lines.append(f"| {r['label']} | {_ours(r['_cell'])} | {paper} | {_fmt(float(r['difference'])) if r['difference'] else '-'} "
                         f"| {r['status']} |")
    lines += ["", "## Runs", "", "| row | run folders | audit (the full `rome audit` calls are in the CSV) |",
              "|---|---|---|"]
    for r in records:
        if r["metric"] != table.metrics[0].name:
            continue
        runs = "<br>".join(f"`{p}`" for p in r["runs"].split(";") if p) or "-"
        audit = f"`rome table {table.name} --scale {scale.name} --audit {r['row']}`" if r["audit"] else "-"
        lines.append(f"| {r['row']} | {runs} | {audit} |")
    lines += ["", "Published figures and their sources are in the CSV beside this file (`published_source`).",
              f"![{table.name}]({table.name}.png)", ""]
    return "\n".join(lines)


def render_png(table: Table, scale: Scale, records: list[dict[str, Any]], path: Path) -> None:
    """One panel per metric: ours (mean, std bars) beside the paper's figure, per row."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(table.metrics)
    rows = [r for r in records if r["metric"] == table.metrics[0].name]
    fig = Figure(figsize=(max(6.0, 0.45 * len(rows) + 2), 3.2 * n))
    FigureCanvasAgg(fig)
    for i, metric in enumerate(table.metrics):
        ax = fig.add_subplot(n, 1, i + 1)
        recs = [r for r in records if r["metric"] == metric.name]
        xs = list(range(len(recs)))
        ours = [r["_cell"].mean if r["_cell"].mean is not None else math.nan for r in recs]
        err = [r["_cell"].std or 0.0 for r in recs]
        paper = [float(r["published"]) if r["published"] != "" else math.nan for r in recs]
        ax.bar([x - 0.2 for x in xs], ours, width=0.4, yerr=err, label=f"ours ({scale.name} scale)", color="#4c72b0")
        ax.bar([x + 0.2 for x in xs], paper, width=0.4, label="paper", color="#dd8452")
        ax.set_xticks(xs, [r["row"] for r in recs], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel(metric.label, fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle(table.title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    from rome.artifacts import write_bytes

    write_bytes(path, buf.getvalue())


def filled_rows(records: list[dict[str, Any]]) -> int:
    """Rows x metrics that hold a value of ours (what a report must not lose by accident)."""
    return sum(1 for r in records if str(r.get("ours_mean", "")).strip() not in ("", "nan"))


def write_report(table: Table, scale: Scale, plans: list[RowPlan], force: bool = False) -> list[Path]:
    """Write the report; refuse to replace one that holds more filled rows than the runs found now
    give (a fresh clone, a moved runs folder), so committed results are never emptied by accident."""
    from rome.artifacts import write_text

    records = collect(table, plans)
    md, csv_file, png = report_files(table.name, scale.name)
    if csv_file.is_file() and not force:
        try:
            before = filled_rows(list(csv.DictReader(io.StringIO(csv_file.read_text()))))
        except (OSError, UnicodeDecodeError, csv.Error):
            before = 0  # unreadable: nothing a reader could lose
        now = filled_rows(records)
        if now < before:
            raise RomeError(f"{csv_file}: holds {before} filled row(s), the runs found now fill {now}; refusing to "
                            f"replace it with an emptier report (build the runs: rome table {table.name} --scale "
                            f"{scale.name} --engine dvc, or --force to write it anyway)")
    write_text(csv_file, render_csv(records))
    render_png(table, scale, records, png)
    write_text(md, render_markdown(table, scale, records))
    return [md, csv_file, png]
