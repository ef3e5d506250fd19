"""``rome audit <genotype.json | artifact folder>``: which params, code and data produced an
artifact, and whether the current workspace would reproduce it.

Reads the artifact's provenance blocks (every artifact carries one, see rome.artifacts: params,
per-file code hashes, data content hash), the run records in state/ (commit, host, time, DVC stage,
W&B run) and dvc.lock when the run happened under DVC. Reports params key by key, code file by
file and data by content hash.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from rome.artifacts import git_state, read_json
from rome.config import deep_merge, load_params, params_hash
from rome.errors import RomeError
from rome.nested_diff import leaf_differences
from rome.outputs import LAYOUTS, stage_document
from rome.paths import STAGES, run_record_path, stage_dir
from rome.pipeline.codedeps import code_identity

SECTIONS: list[str] = []
STAGE_FILES = (("derive", "genotype.json"), ("search", "search.json"), ("train", "model.json"),
               ("evaluate", "evaluate.json"), ("prepare", "manifest.json"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", type=Path, help="a genotype.json / artifact JSON, or a stage or run folder")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument("--dvc-lock", type=Path, default=Path("dvc.lock"), help="dvc.lock to look the stage up in")
    parser.add_argument("--data", type=Path, default=None, metavar="DIR",
                        help="the prepared-data folder the run read (default: the one the params imply)")


def _find_blocks(doc: Any, found: dict[str, dict[str, Any]]) -> None:
    """Collect every provenance block (a dict with params + params_hash) by its stage."""
    if isinstance(doc, dict):
        if "params_hash" in doc and "params" in doc and "stage" in doc:
            found.setdefault(doc["stage"], doc)
        for value in doc.values():
            _find_blocks(value, found)
    elif isinstance(doc, list):
        for value in doc:
            _find_blocks(value, found)


def artifact_files(target: Path) -> list[Path]:
    """The JSON files an audit reads for a file, a stage folder, or a run folder."""
    if target.is_file():
        return [target]
    if not target.is_dir():
        raise RomeError(f"{target}: no such file or folder; expected a genotype.json or a results folder")
    files = [target / name for _, name in STAGE_FILES if (target / name).is_file()]
    files += [target / stage / name for stage, name in STAGE_FILES if (target / stage / name).is_file()]
    if not files:
        raise RomeError(f"{target}: no rome artifact found; expected one of {[n for _, n in STAGE_FILES]} in it or its stage folders")
    return files


def collect(target: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    blocks: dict[str, dict[str, Any]] = {}
    extras: dict[str, Any] = {}
    for file in artifact_files(target):
        doc = read_json(file, "rome artifact")
        _find_blocks(doc, blocks)
        for key in ("wandb_run_id", "wandb_run_ids"):
            if key in doc:
                extras.setdefault("wandb", {})[file.name] = doc[key]
        if file.name == "search.json" and "epochs_run" in doc:  # search.early_stop's decision, if it fired
            extras["search_stop"] = {"epochs": doc.get("epochs"), "epochs_run": doc["epochs_run"],
                                     "early_stop": doc.get("early_stop")}
    if not blocks:
        raise RomeError(f"{target}: no provenance block found; expected an artifact written by rome")
    return blocks, extras


def dvc_lock_entry(lock: Path, stage: str | None) -> dict[str, Any] | None:
    """The stage's dvc.lock entry (cmd, and the md5 of its outs as the lock hash)."""
    if not stage or not lock.is_file():
        return None
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    entry = stages.get(stage)
    if entry is None:
        return {"stage": stage, "in_lock": False}
    outs = {o["path"]: o.get("md5") for o in entry.get("outs", [])}
    return {"stage": stage, "in_lock": True, "cmd": entry.get("cmd"), "outs_md5": outs}


def _diff(recorded: Any, current: Any) -> list[str]:
    return [f"{key}: {was!r} -> {now!r}" for key, was, now in leaf_differences(recorded, current, "<absent>")]


def _code_diff(recorded: dict[str, Any]) -> list[str]:
    """File by file: which of the recorded code files changed, appeared or vanished since."""
    files = recorded.get("files") or {}
    if not files:
        return ["<no per-file code hashes recorded: written by an older rome>"]
    now = code_identity(recorded.get("stage", ""))["files"] if recorded.get("stage") in STAGES else {}
    out = [f"{f}: changed" for f in sorted(files) if f in now and now[f] != files[f]]
    out += [f"{f}: no longer imported" for f in sorted(set(files) - set(now))]
    out += [f"{f}: newly imported" for f in sorted(set(now) - set(files))]
    return out


def _data_sha_now(data_dir: Path) -> str | None:
    manifest = data_dir / "manifest.json"
    if not manifest.is_file():
        return None
    doc = read_json(manifest, "prepared-data manifest")
    return (doc.get("outputs_sha256") or {}).get("data.safetensors")


def reproducibility(blocks: dict[str, dict[str, Any]], params_file: Path, overrides: list[str],
                    data_dir: Path | None = None) -> dict[str, Any]:
    """Compare recorded params/code/data with the workspace, for the same run (dataset/space/algorithm/seed):
    params key by key, code file by file (content hashes of each stage's imports), data by content hash."""
    head = blocks.get("search") or next(iter(blocks.values()))
    rec = head["params"]
    pin = {"seed": rec.get("seed")} if "seed" in rec else {}
    if "search" in rec:
        pin["search"] = {"space": rec["search"]["space"], "algorithm": rec["search"]["algorithm"]}
    current = deep_merge(load_params(params_file, overrides), pin)
    if "data" in rec:
        current = deep_merge(current, {"data": {"dataset": rec["data"]["dataset"]}})
    params_diff: dict[str, list[str]] = {}
    code_diff: dict[str, list[str]] = {}
    for stage, block in blocks.items():
        now = {k: current[k] for k in block["params"] if k in current}
        if params_hash(now) != block["params_hash"]:
            params_diff[stage] = _diff(block["params"], now)
        changed = _code_diff({**(block.get("code") or {}), "stage": stage})
        if changed:
            code_diff[stage] = changed
    data_dir = data_dir if data_dir is not None else stage_dir(current, "prepare")
    data_now = _data_sha_now(data_dir)
    data_rec = next((b.get("data_sha256") for b in blocks.values() if b.get("data_sha256")), None)
    manifest = data_dir / "manifest.json"
    data_problem = _data_problem(manifest.parent) if manifest.is_file() else None  # the file itself, by its hash
    data_same = data_rec is not None and data_rec == data_now and data_problem is None
    return {
        "params_unchanged": not params_diff, "params_diff": params_diff,
        "code_unchanged": not code_diff, "code_diff": code_diff, "code_now": git_state(),
        "data_unchanged": data_same, "data_sha256_now": data_now, "data_sha256_recorded": data_rec,
        "data_problem": data_problem,
        "reproducible": not params_diff and not code_diff and data_same,
    }


def target_stage(target: Path) -> str | None:
    """The stage whose artifact ``target`` is (its document names it), for the record of that very folder."""
    return next((name for name, layout in LAYOUTS.items() if stage_document(target, layout) is not None), None)


def run_records(blocks: dict[str, dict[str, Any]], current: dict[str, Any],
                folders: dict[str, Path] | None = None) -> dict[str, Any]:
    """The volatile facts of each stage's last run (state/): when, where, which commit, DVC stage, W&B run.
    ``folders``: stages whose artifact is known to be elsewhere than the derived folder (the audited one)."""
    out = {}
    folders = folders or {}
    for stage in blocks:
        path = run_record_path(current, stage, folders.get(stage)) if stage in (*STAGES, "aggregate") else None
        if path is not None and path.is_file():
            try:
                out[stage] = read_json(path, "run record")
            except RomeError:
                continue
    return out


def _data_problem(folder: Path) -> str | None:
    from rome.data.prepared import prepared_folder_problem  # lazy: torch is slow to import for an audit

    return prepared_folder_problem(folder)


def report(target: Path, params_file: Path, overrides: list[str], lock: Path,
           data_dir: Path | None = None) -> dict[str, Any]:
    blocks, extras = collect(target)
    head = blocks.get("search") or next(iter(blocks.values()))
    rec = head["params"]
    run = deep_merge(load_params(params_file, overrides), {
        **({"seed": rec["seed"]} if "seed" in rec else {}),
        **({"search": {"space": rec["search"]["space"], "algorithm": rec["search"]["algorithm"]}} if "search" in rec else {}),
        **({"data": {"dataset": rec["data"]["dataset"]}} if "data" in rec else {})})
    own = target_stage(target)
    records = run_records(blocks, run, {own: target} if own else None)
    return {
        "target": str(target),
        "stages": {s: {"params_hash": b["params_hash"], "code_hash": (b.get("code") or {}).get("hash"),
                       "data_sha256": b.get("data_sha256"),
                       "commit": (records.get(s, {}).get("git") or {}).get("commit"),
                       "dirty": (records.get(s, {}).get("git") or {}).get("dirty"),
                       "dvc_stage": records.get(s, {}).get("dvc_stage"),
                       "wandb_run_id": records.get(s, {}).get("wandb_run_id"),
                       "created_unix": records.get(s, {}).get("created_unix"),
                       "host": records.get(s, {}).get("host")}
                   for s, b in blocks.items()},
        "search_params": head["params"],
        "hyperparameters": head.get("hyperparameters"),
        "seed": head["params"].get("seed"),
        "dvc": {s: dvc_lock_entry(lock, r.get("dvc_stage")) for s, r in records.items() if r.get("dvc_stage")},
        "wandb": extras.get("wandb", {}),
        "search_stop": extras.get("search_stop"),
        "workspace": reproducibility(blocks, params_file, overrides, data_dir),
    }


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in d.items():
        out += _flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else [(f"{prefix}{k}", v)]
    return out


def render(rep: dict[str, Any]) -> str:
    lines = [f"audit of {rep['target']}", "", "params read by the search (every key, resolved):"]
    lines += [f"  {k} = {json.dumps(v)}" for k, v in _flatten(rep["search_params"])]
    hp = rep.get("hyperparameters")
    if hp:  # reference mode: where each optimiser value came from (rome.algorithms.hyperparameters)
        lines += ["", "search.mode reference, values and their origins (the user's value wins, then the reference's):"]
        lines += [f"  {k} = {json.dumps(v['value'])}  <- {v['origin']}" for k, v in hp["resolved"].items()]
        lines += [f"  (not applied) {k} = {json.dumps(v['value'])}  <- {v['source']}"
                  for k, v in hp["recorded_not_applied"].items()]
    stop = rep.get("search_stop")
    if stop and stop.get("early_stop"):
        es = stop["early_stop"]
        lines += ["", f"search stopped early ({es['criterion']}) after epoch {es['fired_epoch']} of {stop['epochs']}: "
                      f"{es['reason']}; the architecture is epoch {es['chosen_epoch']}'s"]
    elif stop:
        lines += ["", f"search ran all {stop['epochs_run']} of {stop['epochs']} epochs (no early stop fired)"]
    lines.append("")
    for stage, info in rep["stages"].items():
        lines.append(f"{stage}: params {info['params_hash'][:16]}  code {str(info.get('code_hash'))[:16]}"
                     f"  data {str(info.get('data_sha256'))[:16]}  commit {info.get('commit')}"
                     f"{' (dirty tree)' if info.get('dirty') else ''}  dvc stage {info.get('dvc_stage')}"
                     f"  wandb run {info.get('wandb_run_id')}")
    for stage, entry in rep["dvc"].items():
        if entry and entry.get("in_lock"):
            lines.append(f"dvc.lock {entry['stage']}: outs md5 {entry['outs_md5']}")
    ws = rep["workspace"]
    lines.append("")
    lines.append("workspace would reproduce it: " + ("YES" if ws["reproducible"] else "NO"))
    lines.append(f"  params: {'unchanged' if ws['params_unchanged'] else 'CHANGED'}")
    for stage, diffs in ws["params_diff"].items():
        lines += [f"    [{stage}] {d}" for d in diffs]
    lines.append(f"  code:   {'unchanged' if ws['code_unchanged'] else 'CHANGED'} (now {ws['code_now']['commit']}"
                 f"{', dirty' if ws['code_now']['dirty'] else ''})")
    for stage, diffs in ws["code_diff"].items():
        lines += [f"    [{stage}] {d}" for d in diffs]
    lines.append(f"  data:   {'unchanged' if ws['data_unchanged'] else 'CHANGED or missing'}"
                 f" (recorded {str(ws['data_sha256_recorded'])[:16]}, now {str(ws['data_sha256_now'])[:16]})"
                 + (f" ({ws['data_problem']})" if ws.get("data_problem") else ""))
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    rep = report(args.target, Path(args.params), args.overrides, args.dvc_lock, args.data)
    print(json.dumps(rep, indent=2, default=str) if args.json else render(rep))
    return 0


def run(params: dict[str, Any], out: Path, args: argparse.Namespace) -> Path:  # pragma: no cover - CLI uses main
    raise RomeError("audit is run through `rome audit TARGET`")
