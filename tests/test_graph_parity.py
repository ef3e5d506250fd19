"""dvc.yaml and the Snakefile describe the same graph over the same CLI; both match rome.paths."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from rome.config import load_params, schema
from rome.paths import stage_dir
from rome.stages.aggregate import sweep_runs

BIN = Path(sys.executable).parent
CHECKPOINT_SUFFIXES = ("_ckpt",)


def dvc_stages(repo: Path) -> dict[str, dict]:
    """Expanded DVC stages: name -> cmd, deps, outs, params (read through DVC's own API)."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        out = {}
        for stage in dvc.index.stages:
            params = [k for d in stage.deps if hasattr(d, "params") for k in (d.params or [])]
            out[stage.addressing] = {
                "cmd": " ".join(stage.cmd.split()),
                "deps": {d.def_path for d in stage.deps if not hasattr(d, "params")},
                "outs": {o.def_path for o in stage.outs},
                "persist": {o.def_path for o in stage.outs if o.persist},
                "params": params,
            }
        return out


def snakemake_jobs(repo: Path) -> list[dict]:
    """Jobs of a forced dry run: rule, shell command (without the log redirection), inputs, outputs."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    res = subprocess.run([str(BIN / "snakemake"), "-n", "-p", "--forceall", "--cores", "1"], cwd=repo,
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr + res.stdout
    jobs = []
    for block in re.split(r"\n(?=\[[^\]]+\]\nrule |rule )", res.stdout):
        m = re.search(r"rule (\w+):", block)
        if not m or m.group(1) == "all":
            continue
        field = lambda name: set(re.search(rf"^\s+{name}: (.*)$", block, re.M).group(1).split(", ")) \
            if re.search(rf"^\s+{name}: ", block, re.M) else set()  # noqa: E731
        shell = re.search(r"^(?:Shell command: )?(rome .*)$", block, re.M).group(1)
        jobs.append({"rule": m.group(1), "cmd": re.sub(r"\s+2>\s+\S+$", "", shell).strip(),
                     "input": field("input"), "output": field("output")})
    return jobs


@pytest.fixture(scope="module")
def graphs() -> tuple[dict, list]:
    return dvc_stages(REPO), snakemake_jobs(REPO)


def test_same_stages_and_commands(graphs) -> None:
    dvc, smk = graphs
    dvc_cmds = {(name.split("@")[0], s["cmd"]) for name, s in dvc.items()}
    smk_cmds = {(j["rule"], j["cmd"]) for j in smk}
    assert smk_cmds == dvc_cmds
    for name, s in dvc.items():
        assert s["cmd"].startswith(f"rome {name.split('@')[0]}"), name


def test_same_inputs_and_outputs(graphs) -> None:
    dvc, smk = graphs
    by_cmd = {s["cmd"]: s for s in dvc.values()}
    for job in smk:
        stage = by_cmd[job["cmd"]]
        outs = {o for o in stage["outs"] if not o.endswith(CHECKPOINT_SUFFIXES)}
        assert job["output"] <= outs, job["rule"]
        if job["rule"] != "aggregate":
            assert job["output"] == outs, job["rule"]
            upstream = {d for d in stage["deps"] if d.startswith("results/")}
            assert job["input"] == upstream, job["rule"]


def test_paths_match_rome_paths(graphs) -> None:
    dvc, _ = graphs
    params = load_params(REPO / "params.yaml")
    expected = set()
    for run in sweep_runs(params):
        expected |= {str(stage_dir(run, s)) for s in ("prepare", "search", "derive", "train", "evaluate")}
    produced = {o for s in dvc.values() for o in s["outs"] if o.startswith("results/") and not o.endswith(CHECKPOINT_SUFFIXES)}
    assert produced == expected
    assert str(stage_dir(params, "aggregate")) == "reports"


def test_checkpoints_persist(graphs) -> None:
    dvc, _ = graphs
    persist = {p for s in dvc.values() for p in s["persist"]}
    assert any(p.endswith("search_ckpt") for p in persist) and any(p.endswith("train_ckpt") for p in persist)


def test_params_named_exist_in_schema_and_cover_what_stages_read(graphs) -> None:
    dvc, _ = graphs
    props = schema()["properties"]
    for name, s in dvc.items():
        for key in s["params"]:
            node = props
            for part in key.split("."):
                assert part in node, f"{name}: params key {key!r} not in the schema"
                node = node[part].get("properties", {})
        module = importlib.import_module(f"rome.stages.{name.split('@')[0]}")
        # data.* reaches later stages through the prepared-data dependency
        missing = set(module.SECTIONS) - set(s["params"]) - {"data"}
        assert not missing, f"{name} reads {missing} but dvc.yaml does not track them"


def test_params_named_by_dvc_exist_in_params_yaml(graphs) -> None:
    """DVC refuses to run a stage whose params are absent from params.yaml (presets do not count)."""
    dvc, _ = graphs
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    for name, s in dvc.items():
        for key in s["params"]:
            node = shipped
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, f"{name}: {key!r} missing from params.yaml"
                node = node[part]


def test_dvc_yaml_tracks_only_what_a_stage_reads() -> None:
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert "train" not in spec["search"]["params"] and "search" not in spec["train"]["params"]
    assert spec["evaluate"]["params"] == ["device", "evaluate"]


@pytest.mark.skipif(shutil.which("git") is None, reason="git missing")
def test_snakemake_lint_is_clean() -> None:
    res = subprocess.run([str(BIN / "snakemake"), "--lint"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "good condition" in res.stdout + res.stderr, res.stdout + res.stderr
