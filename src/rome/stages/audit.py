"""``rome audit <genotype.json | artifact folder>``: which params, code and data produced an
artifact, and whether the current workspace would reproduce it.

Reads only the artifact's provenance blocks (every artifact carries one, see rome.artifacts),
plus dvc.lock when the run happened under DVC.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from rome.artifacts import git_state, read_json, sha256_file
from rome.config import deep_merge, load_params, params_hash
from rome.errors import RomeError
from rome.nested_diff import leaf_differences
from rome.paths import stage_dir

SECTIONS: list[str] = []
STAGE_FILES = (("derive", "genotype.json"), ("search", "search.json"), ("train", "model.json"),
               ("evaluate", "evaluate.json"), ("prepare", "manifest.json"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", type=Path, help="a genotype.json / artifact JSON, or a stage or run folder")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument("--dvc-lock", type=Path, default=Path("dvc.lock"), help="dvc.lock to look the stage up in")


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


def reproducibility(blocks: dict[str, dict[str, Any]], params_file: Path, overrides: list[str]) -> dict[str, Any]:
    """Compare recorded params/code/data with the workspace, for the same run (dataset/space/algorithm/seed)."""
    head = blocks.get("search") or next(iter(blocks.values()))
    rec = head["params"]
    pin = {"seed": rec.get("seed")} if "seed" in rec else {}
    if "search" in rec:
        pin["search"] = {"space": rec["search"]["space"], "algorithm": rec["search"]["algorithm"]}
    current = deep_merge(load_params(params_file, overrides), pin)
    if "data" in rec:
        current = deep_merge(current, {"data": {"dataset": rec["data"]["dataset"]}})
    params_diff: dict[str, list[str]] = {}
    for stage, block in blocks.items():
        now = {k: current[k] for k in block["params"] if k in current}
        if params_hash(now) != block["params_hash"]:
            params_diff[stage] = _diff(block["params"], now)
    git = git_state()
    recorded_commit = head.get("code", {}).get("commit")
    code_same = bool(recorded_commit) and recorded_commit == git["commit"] and not git["dirty"] \
        and not head.get("code", {}).get("dirty")
    manifest = stage_dir(current, "prepare") / "manifest.json"
    data_now = sha256_file(manifest) if manifest.is_file() else None
    data_rec = next((b.get("data_manifest_sha256") for b in blocks.values() if b.get("data_manifest_sha256")), None)
    return {
        "params_unchanged": not params_diff, "params_diff": params_diff,
        "code_unchanged": code_same, "code_now": git,
        "data_unchanged": data_rec is not None and data_rec == data_now, "data_manifest_sha256_now": data_now,
        "reproducible": not params_diff and code_same and data_rec is not None and data_rec == data_now,
    }


def report(target: Path, params_file: Path, overrides: list[str], lock: Path) -> dict[str, Any]:
    blocks, extras = collect(target)
    head = blocks.get("search") or next(iter(blocks.values()))
    return {
        "target": str(target),
        "stages": {s: {"params_hash": b["params_hash"], "code": b.get("code"), "dvc_stage": b.get("dvc_stage"),
                       "data_manifest_sha256": b.get("data_manifest_sha256"), "wandb_run_id": b.get("wandb_run_id")}
                   for s, b in blocks.items()},
        "search_params": head["params"],
        "seed": head["params"].get("seed"),
        "dvc": {s: dvc_lock_entry(lock, b.get("dvc_stage")) for s, b in blocks.items() if b.get("dvc_stage")},
        "wandb": extras.get("wandb", {}),
        "workspace": reproducibility(blocks, params_file, overrides),
    }


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in d.items():
        out += _flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else [(f"{prefix}{k}", v)]
    return out


def render(rep: dict[str, Any]) -> str:
    lines = [f"audit of {rep['target']}", "", "params read by the search (every key, resolved):"]
    lines += [f"  {k} = {json.dumps(v)}" for k, v in _flatten(rep["search_params"])]
    lines.append("")
    for stage, info in rep["stages"].items():
        code = info.get("code") or {}
        lines.append(f"{stage}: params_hash {info['params_hash'][:16]}  commit {code.get('commit')}"
                     f"{' (dirty tree)' if code.get('dirty') else ''}  data {str(info.get('data_manifest_sha256'))[:16]}"
                     f"  dvc stage {info.get('dvc_stage')}  wandb run {info.get('wandb_run_id')}")
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
    lines.append(f"  data:   {'unchanged' if ws['data_unchanged'] else 'CHANGED or missing'}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    rep = report(args.target, Path(args.params), args.overrides, args.dvc_lock)
    print(json.dumps(rep, indent=2, default=str) if args.json else render(rep))
    return 0


def run(params: dict[str, Any], out: Path, args: argparse.Namespace) -> Path:  # pragma: no cover - CLI uses main
    raise RomeError("audit is run through `rome audit TARGET`")
