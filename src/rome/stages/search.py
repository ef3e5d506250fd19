"""``rome search``: prepared data -> architecture parameters, history and probabilities (resumable).

Outputs (one folder, written atomically): ``arch.safetensors`` (alpha_<cell>, beta_<cell>),
``search.json`` (what ``rome derive`` reads: space, algorithm, variant, ops per edge per cell type,
edges as (src, dst) state indices, in_degree, pairs for ROME-v1, tau_final, final metrics,
provenance, environment), ``history.json`` / ``history.csv`` (one row per epoch),
``probabilities.csv`` (long format for DVC plots) and ``metrics.json``. The checkpoint lives in
``rome.paths.checkpoint_dir(params, "search")/last.pt``: the same command continues a killed run.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import sys
from pathlib import Path
from typing import Any

from safetensors.torch import save as save_safetensors

from rome import tracking
from rome.artifacts import atomic_dir, provenance, write_bytes, write_json, write_run_record, write_text
from rome.paths import checkpoint_dir, input_dir
from rome.reproducibility import resolve_device, seed_everything, set_deterministic
from rome.tracking import tracking_run_id

SECTIONS = ["data", "search"]
SEARCH_SCHEMA_VERSION = 1
HISTORY_COLUMNS = ("epoch", "tau", "lr", "train_loss", "train_acc", "arch_loss", "val_loss", "val_acc",
                   "n_param_free_normal")
# measured, not computed: they differ between two runs of the same inputs, so they go to the run
# record (state/<run>/search.run.json) and W&B, never into the artifact
VOLATILE = ("peak_memory_mb", "seconds")


def _csv(rows: list[dict[str, Any]], columns: tuple[str, ...] | list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def probability_rows(history: list[dict[str, Any]], space: Any, beta_labels: list[str]) -> list[dict[str, Any]]:
    """Long format: one row per (epoch, cell type, alpha entry) and per (epoch, cell type, beta entry).

    Beta rows carry ``op`` = "" and ``edge`` = the edge index (v2) or "a+b" edge indices of a pair (v1).
    ``series`` names the curve (DVC's ``series`` plot template draws one line per series).
    """
    rows = []
    for h in history:
        for ct, per_edge in h["alpha"].items():
            for e, probs in enumerate(per_edge):
                for name, p in zip(space.ops(ct, e), probs):
                    rows.append({"epoch": h["epoch"], "cell_type": ct, "param": "alpha", "edge": e, "op": name,
                                 "p": round(p, 6), "series": f"{ct} alpha e{e} {name}"})
        for ct, probs in h["beta"].items():
            for label, p in zip(beta_labels, probs):
                rows.append({"epoch": h["epoch"], "cell_type": ct, "param": "beta", "edge": label, "op": "",
                             "p": round(p, 6), "series": f"{ct} beta {label}"})
    return rows


def search_document(result: Any, params: dict[str, Any], data_sha: str | None) -> dict[str, Any]:
    """search.json: the contract with ``rome derive`` (see rome.stages.derive) plus run facts."""
    from rome.search.loop import steps_per_epoch

    state = result.state
    algo, space, last = state.algorithm, state.space, state.history[-1]
    doc: dict[str, Any] = {
        "schema_version": SEARCH_SCHEMA_VERSION,
        "space": space.name,
        "kind": space.kind,
        "algorithm": algo.name,
        "variant": algo.variant,
        "derivation_rule": algo.derivation_rule,
        "sampling": algo.describe(),
        "cell_types": list(space.cell_types),
        "nodes": space.nodes,
        "ops": {ct: [list(o) for o in space.op_table[ct]] for ct in space.cell_types},
        "edges": [list(e) for e in space.edges],
        "in_degree": list(space.in_degree),
        "sizes": {k: params["search"][k] for k in ("layers", "init_channels", "nodes", "batch_size")},
        "input": {"channels": state.data.in_channels, "resolution": state.data.resolution, "classes": state.data.num_classes},
        "epochs": params["search"]["epochs"],
        "steps_per_epoch": steps_per_epoch(state),
        "k_samples": algo.k_samples,
        "tau_final": last["tau"],
        "genotype": last["genotype"],
        "final": {k: last[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc", "n_param_free_normal")},
        "provenance": provenance(params, SECTIONS, "search", data_sha),
    }
    if hasattr(algo.topology, "pairs"):
        doc["pairs"] = [list(p) for p in algo.topology.pairs()]
    return doc


def write_outputs(folder: Path, result: Any, params: dict[str, Any], data_sha: str | None) -> None:
    state = result.state
    history = [{k: v for k, v in h.items() if k not in VOLATILE} for h in state.history]
    tensors = state.algorithm.arch.named_tensors()
    write_bytes(folder / "arch.safetensors", save_safetensors(tensors, metadata={"schema_version": str(SEARCH_SCHEMA_VERSION)}))
    doc = search_document(result, params, data_sha)
    write_json(folder / "search.json", doc)
    write_json(folder / "history.json", {"schema_version": SEARCH_SCHEMA_VERSION, "epochs": history})
    write_text(folder / "history.csv", _csv(history, HISTORY_COLUMNS))
    rows = probability_rows(history, state.space, state.algorithm.topology.labels())
    write_text(folder / "probabilities.csv", _csv(rows, ("epoch", "series", "cell_type", "param", "edge", "op", "p")))
    last = history[-1]
    write_json(folder / "metrics.json", {"val_acc": last["val_acc"], "val_loss": last["val_loss"],
                                         "n_param_free_normal": last["n_param_free_normal"]})


def export_checkpoint(src: Path, dst: Path) -> None:
    """The finished run's checkpoint, as the artifact keeps it: the measured per-epoch figures
    (seconds, peak memory) are dropped, so the file is a pure function of params, code and data."""
    import torch

    state = torch.load(src, map_location="cpu", weights_only=False)
    state["history"] = [{k: v for k, v in h.items() if k not in VOLATILE} for h in state.get("history", [])]
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes(dst, buf.getvalue())


def log_epoch(tracker: tracking.Tracker, row: dict[str, Any]) -> None:
    """Per epoch to W&B: scalars, and the softmaxed alpha/beta as tables (one row per entry)."""
    if not tracker.active:
        return
    step = row["epoch"]
    tracker.log({k: row[k] for k in (*HISTORY_COLUMNS, *VOLATILE) if k != "epoch" and row.get(k) is not None}, step=step)
    alpha = [[ct, e, i, p] for ct, edges in row["alpha"].items() for e, ps in enumerate(edges) for i, p in enumerate(ps)]
    tracker.log_table("alpha", ["cell_type", "edge", "op_index", "p"], alpha, step=step)
    if row["beta"]:
        beta = [[ct, i, p] for ct, ps in row["beta"].items() for i, p in enumerate(ps)]
        tracker.log_table("beta", ["cell_type", "entry", "p"], beta, step=step)


def run(params: dict[str, Any], out: Path, args: argparse.Namespace | None = None) -> Path:
    from rome.data.prepared import load_prepared
    from rome.search.loop import SearchData, run_search

    seed_everything(params["seed"])
    set_deterministic(bool(params["deterministic"]))
    device = resolve_device(params["device"])
    s = params["search"]
    if s["amp"] != "none" and device.type != "cuda":
        print(f"search: search.amp = {s['amp']!r} ignored on {device.type} (bf16 autocast is used on CUDA only)", file=sys.stderr)
    prepared = load_prepared(input_dir(params, "prepare"))
    data = SearchData.from_prepared(prepared)
    ckpt_dir = checkpoint_dir(params, "search")
    prov = provenance(params, SECTIONS, "search", prepared.data_sha256)
    with tracking.start(params, "search", SECTIONS, prov, run_id=tracking_run_id(ckpt_dir)) as tracker:
        tracker.use_artifact(prepared.path, tracking.artifact_name(params, "dataset"), "dataset")
        result = run_search(params, data, ckpt_dir, device, on_epoch=lambda row: log_epoch(tracker, row))
        with atomic_dir(out) as tmp:
            write_outputs(tmp, result, params, prepared.data_sha256)
            export_checkpoint(ckpt_dir / "last.pt", tmp / "checkpoint.pt")
        tracker.summary({k: result.history[-1][k] for k in ("val_acc", "val_loss", "n_param_free_normal")})
        tracker.log_artifact(out, tracking.artifact_name(params, "search"), "search")
        write_run_record(params, "search", out, seconds=round(sum(h["seconds"] for h in result.history), 3),
                         epochs=[{k: h[k] for k in ("epoch", *VOLATILE)} for h in result.history])
    # The finished run's checkpoint now lives in the artifact; the state folder only ever holds an
    # *interrupted* run, so a later run with changed params starts fresh instead of tripping over a
    # completed run's checkpoint (an interrupted one is still refused).
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    last = result.history[-1]
    print(f"search: {s['algorithm']} on {s['space']}: val acc {last['val_acc']:.3f}, "
          f"parameter-free ops in the normal cell {last['n_param_free_normal']}", file=sys.stderr)
    return out
