"""``rome search``: prepared data -> the search artifact (``rome.search.artifact``), resumable.

The checkpoint lives in ``rome.paths.checkpoint_dir(params, "search")/last.pt`` (in state/, not an
output): the same command continues a killed run; a finished run's checkpoint moves into the
artifact. Measured figures (seconds, peak memory) go to the run record, never into the artifact.

Under ``torchrun --nproc_per_node=N rome search`` every rank searches (the K draws shared, see
rome.distributed); rank 0 alone writes the checkpoint, the artifact, the run record and W&B, the
others wait for it at a barrier and write nothing.
"""

from __future__ import annotations

import argparse
import io
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from rome import distributed, tracking
from rome.artifacts import atomic_dir, provenance, write_bytes, write_run_record
from rome.outputs import LAYOUTS
from rome.paths import checkpoint_dir, input_dir, stream_cache_dir
from rome.reproducibility import resolve_device, seed_everything, set_deterministic
from rome.search import checkpoint as search_checkpoint
from rome.sections import SearchConfig
from rome.search.artifact import ALPHA_PNG, CHECKPOINT_FILE, CURVES_PNG, VOLATILE, history_columns, write_search_artifact
from rome.algorithms.hyperparameters import provenance_block, reference_changes
from rome.tracking import tracking_run_id

logger = logging.getLogger(__name__)

SECTIONS = ["data", "search"]


def estimate(params: dict[str, Any], args: argparse.Namespace | None = None) -> int:
    """``rome search --estimate``: the cost of this search on this device (rome.search.estimate), nothing written."""
    from rome.data.prepared import load_prepared
    from rome.search.estimate import estimate_search
    from rome.search.loop import SearchData

    seed_everything(params["seed"])
    device = resolve_device(params["device"])
    prepared = load_prepared(input_dir(params, "prepare"), stream_cache_dir(params))
    result = estimate_search(SearchConfig.from_params(params), params["seed"], params["data"]["dataset"],
                             SearchData.from_prepared(prepared), device)
    print("\n".join(result.lines()))
    return 0


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


def search_provenance(params: dict[str, Any], data_sha: str | None) -> dict[str, Any]:
    """The audit block, plus in reference mode the optimiser values with their origins (reference file:line, or
    the user's) and the authors' facts reference mode does not apply (rome.algorithms.hyperparameters)."""
    prov = provenance(params, SECTIONS, "search", data_sha)
    block = provenance_block(params)
    if block is not None:
        prov["hyperparameters"] = block
    return prov


def search_document(result: Any, params: dict[str, Any], data_sha: str | None) -> dict[str, Any]:
    """search.json without its schema version: the contract with ``rome derive`` (rome.search.artifact) plus run facts."""
    from rome.search.loop import steps_per_epoch

    state = result.state
    algo, space = state.algorithm, state.space
    last = kept_row(state)  # the last epoch's, or the one search.early_stop chose
    doc: dict[str, Any] = {
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
        "stem": state.stem,  # the resolved search.stem (auto -> cifar / imagenet)
        "input": {"channels": state.data.in_channels, "resolution": state.data.resolution, "classes": state.data.num_classes},
        "epochs": params["search"]["epochs"],
        "steps_per_epoch": steps_per_epoch(state),
        "k_samples": algo.k_samples,
        "tau_final": last["tau"],
        "genotype": last["genotype"],
        "final": {k: last[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc", "n_param_free_normal")},
        "epochs_run": len(state.history),
        "early_stop": None if state.stop is None else state.stop.as_dict(),
        "provenance": search_provenance(params, data_sha),
    }
    if hasattr(algo.topology, "pairs"):
        doc["pairs"] = [list(p) for p in algo.topology.pairs()]
    return doc


def kept_row(state: Any) -> dict[str, Any]:
    """The history row of the architecture the artifact keeps: the last epoch's, or early stopping's choice."""
    return state.history[-1] if state.stop is None else state.history[state.stop.chosen_epoch - 1]


def kept_arch(state: Any) -> dict[str, Any]:
    """alpha/beta as the artifact keeps them: the final parameters, or the snapshot of early stopping's epoch."""
    if state.stop is None:
        return state.algorithm.arch.named_tensors()
    return state.arch_by_epoch[state.stop.chosen_epoch - 1]


def write_outputs(folder: Path, result: Any, params: dict[str, Any], data_sha: str | None) -> None:
    state = result.state
    history = [{k: v for k, v in h.items() if k not in VOLATILE} for h in state.history]
    doc = search_document(result, params, data_sha)
    last = {k: v for k, v in kept_row(state).items() if k not in VOLATILE}
    write_search_artifact(
        folder, doc, kept_arch(state), history,
        probability_rows(history, state.space, state.algorithm.topology.labels()),
        # named for what they measure: the weight-sharing supernet's argmax path on search_val
        {"supernet_val_acc": last["val_acc"], "supernet_val_loss": last["val_loss"],
         "n_param_free_normal": last["n_param_free_normal"]})
    from rome.curves import plot_alpha_heatmap, plot_search_curves

    plot_search_curves(history, folder / CURVES_PNG, stop=state.stop)
    ops = {ct: [state.space.ops(ct, e) for e in range(len(per_edge))] for ct, per_edge in last["alpha"].items()}
    plot_alpha_heatmap(history, ops, folder / ALPHA_PNG)


def _interned(obj: Any) -> Any:
    """``obj`` with every string interned, so pickle's memo (which shares *identical* objects) writes
    the same bytes whatever the strings' history: a resumed run's optimizer state holds keys read back
    from the checkpoint (several equal string objects) where an uninterrupted run holds one literal,
    and without this the resumed ``checkpoint.pt`` differed from the uninterrupted one in bytes only."""
    if isinstance(obj, str):
        return sys.intern(obj)
    if isinstance(obj, dict):
        return type(obj)((_interned(k), _interned(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)) and type(obj) in (list, tuple):
        return type(obj)(_interned(v) for v in obj)
    return obj


def export_checkpoint(src: Path, dst: Path) -> None:
    """The finished run's checkpoint, as the artifact keeps it: the measured per-epoch figures
    (seconds, peak memory) are dropped, so the file is a pure function of params, code and data."""
    import torch

    state = search_checkpoint.read_checkpoint(src)
    state["history"] = [{k: v for k, v in h.items() if k not in VOLATILE} for h in state.get("history", [])]
    buf = io.BytesIO()
    torch.save(_interned(state), buf)
    write_bytes(dst, buf.getvalue())


def log_epoch(tracker: tracking.Tracker, row: dict[str, Any]) -> None:
    """Per epoch to W&B: scalars, and the softmaxed alpha/beta as tables (one row per entry)."""
    if not tracker.active:
        return
    step = row["epoch"]
    columns = (*history_columns(list(row["alpha"])), *VOLATILE)
    tracker.log({k: row[k] for k in columns if k != "epoch" and row.get(k) is not None}, step=step)
    alpha = [[ct, e, i, p] for ct, edges in row["alpha"].items() for e, ps in enumerate(edges) for i, p in enumerate(ps)]
    tracker.log_table("alpha", ["cell_type", "edge", "op_index", "p"], alpha, step=step)
    if row["beta"]:
        beta = [[ct, i, p] for ct, ps in row["beta"].items() for i, p in enumerate(ps)]
        tracker.log_table("beta", ["cell_type", "entry", "p"], beta, step=step)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fresh", action="store_true",
                        help="discard the resume checkpoint (state/<run>/search_ckpt/) and search again from epoch 0")


def run(params: dict[str, Any], out: Path, args: argparse.Namespace | None = None) -> Path:
    from rome.data.prepared import load_prepared
    from rome.layout import use_channels_last
    from rome.search.loop import SearchData, run_search

    seed_everything(params["seed"])
    set_deterministic(bool(params["deterministic"]))
    group = distributed.current()
    device = distributed.local_device(resolve_device(params["device"]))
    s = params["search"]
    if s["amp"] != "none" and device.type != "cuda":
        logger.warning(f"search: search.amp = {s['amp']!r} ignored on {device.type} "
                       "(bf16 autocast is used on CUDA only)")
    prepared = load_prepared(input_dir(params, "prepare"), stream_cache_dir(params))
    data = SearchData.from_prepared(prepared)
    ckpt_dir = checkpoint_dir(params, "search")
    if group.is_main and args is not None and getattr(args, "fresh", False):
        # only the file rome's search writes there (and its temp files): a user's file beside it stays
        for file in (ckpt_dir.glob(f"{search_checkpoint.CHECKPOINT_FILE}*") if ckpt_dir.is_dir() else ()):
            file.unlink()
    group.barrier()
    if not group.is_main:
        run_search(SearchConfig.from_params(params), params["seed"], params["data"]["dataset"], data, ckpt_dir,
                   device, group=group)
        group.barrier()  # rank 0 writes the artifact meanwhile
        return out
    prov = search_provenance(params, prepared.data_sha256)
    changes = reference_changes(params)
    if changes:
        logger.info(changes)
    with tracking.start(params, "search", SECTIONS, prov, run_id=tracking_run_id(ckpt_dir)) as tracker:
        tracker.use_artifact(prepared.path, tracking.artifact_name(params, "dataset"), "dataset")
        result = run_search(SearchConfig.from_params(params), params["seed"], params["data"]["dataset"], data, ckpt_dir,
                            device, on_epoch=lambda row: log_epoch(tracker, row), group=group)
        with atomic_dir(out, LAYOUTS["search"]) as tmp:
            write_outputs(tmp, result, params, prepared.data_sha256)
            export_checkpoint(ckpt_dir / search_checkpoint.CHECKPOINT_FILE, tmp / CHECKPOINT_FILE)
        kept = kept_row(result.state)
        tracker.summary({**{k: kept[k] for k in ("val_acc", "val_loss", "n_param_free_normal")},
                         "epochs_run": len(result.history),
                         "early_stop_epoch": None if result.state.stop is None else result.state.stop.chosen_epoch})
        tracker.log_artifact(out, tracking.artifact_name(params, "search"), "search")
        write_run_record(params, "search", out, tracker.run_id, seconds=round(sum(h["seconds"] for h in result.history), 3),
                         epochs=[{k: h.get(k) for k in ("epoch", *VOLATILE)} for h in result.history],
                         processes=group.world_size,
                         channels_last=use_channels_last(s["channels_last"], device))  # what auto resolved to
    # The finished run's checkpoint now lives in the artifact; the state folder only ever holds an
    # *interrupted* run, so a later run with changed params starts fresh instead of tripping over a
    # completed run's checkpoint (an interrupted one is still refused).
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    group.barrier()
    last = kept_row(result.state)
    if result.state.stop is not None:
        stop = result.state.stop
        logger.info(f"search: stopped early after epoch {stop.fired_epoch}/{s['epochs']} ({stop.criterion}); "
                    f"search.json and arch.safetensors hold epoch {stop.chosen_epoch}'s architecture")
    logger.info(f"search: {s['algorithm']} on {s['space']}: supernet val acc {last['val_acc']:.3f} (weight-sharing "
                f"supernet at the search budget, not the derived model: `rome train` measures that), "
                f"parameter-free ops in the normal cell {last['n_param_free_normal']}")
    return out
