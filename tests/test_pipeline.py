"""End to end on the smoke preset: dvc repro (twice), a retraining-only change, Snakemake's
artifacts, the audit of the produced genotype, and W&B offline without network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, copy_working_tree

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow
RUN = "results/mnist5k/darts/rome/seed0"


def sh(cmd: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "WANDB_MODE": "disabled", **env}
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=full_env, timeout=900)
    assert res.returncode == 0, f"{cmd} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def copy_repo(dest: Path, params: dict) -> Path:
    """A git-initialised copy of the working tree (tracked + untracked, not ignored files)."""
    copy_working_tree(dest)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["git", "init", "-q"], dest)
    sh(["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A"], dest)
    sh(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "copy"], dest)
    return dest


SMOKE = {"preset": "smoke", "seed": 0, "device": "cpu", "deterministic": False, "data": {}, "search": {}, "derive": {}, "train": {},
         "evaluate": {}, "tracking": {"mode": "disabled"},
         "sweep": {"seeds": [0], "spaces": ["darts"], "datasets": ["mnist5k"], "algorithms": ["rome"]}}


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = copy_repo(tmp_path_factory.mktemp("dvc"), SMOKE)
    sh(["dvc", "repro"], repo)
    return repo


def test_dvc_repro_builds_every_artifact(dvc_repo: Path) -> None:
    for stage in ("search", "derive", "train", "evaluate"):
        assert (dvc_repo / RUN / stage).is_dir(), stage
    genotype = json.loads((dvc_repo / RUN / "derive" / "genotype.json").read_text())
    assert len(genotype["genotype"]["normal"]) == 8
    metrics = json.loads((dvc_repo / "reports" / "metrics.json").read_text())
    assert "mnist5k/darts/rome" in metrics
    lock = yaml.safe_load((dvc_repo / "dvc.lock").read_text())
    assert {"prepare@mnist5k", "aggregate"} <= set(lock["stages"])
    shown = sh(["dvc", "metrics", "show", "--json"], dvc_repo)
    assert "reports/metrics.json" in shown.stdout


def test_second_repro_does_nothing(dvc_repo: Path) -> None:
    out = sh(["dvc", "repro"], dvc_repo).stdout
    assert "Running stage" not in out and "up to date" in out


def test_retraining_change_skips_search(dvc_repo: Path) -> None:
    params = yaml.safe_load((dvc_repo / "params.yaml").read_text())
    params["train"] = {"lr": 0.05}
    (dvc_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = sh(["dvc", "repro"], dvc_repo).stdout
    ran = {line.split("'")[1].split("@")[0] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran == {"train", "evaluate", "aggregate"}, out


def test_exp_run_over_another_algorithm(dvc_repo: Path) -> None:
    """Experiments change the sweep; a run-selecting key outside it is refused with the fix."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "WANDB_MODE": "disabled"}
    bad = subprocess.run(["dvc", "exp", "run", "-S", "+search.algorithm=gdas"], cwd=dvc_repo, capture_output=True,
                         text=True, env=env, timeout=600)
    assert bad.returncode != 0 and "is not in sweep.algorithms" in bad.stdout + bad.stderr
    sh(["git", "checkout", "--", "params.yaml"], dvc_repo)
    sh(["dvc", "exp", "run", "-n", "gdas", "-S", "sweep.algorithms=[gdas]"], dvc_repo)
    shown = sh(["dvc", "exp", "show", "--json"], dvc_repo).stdout
    assert '"gdas"' in shown
    assert (dvc_repo / "results/mnist5k/darts/gdas/seed0/evaluate/metrics.json").is_file()
    sh(["git", "checkout", "--", "params.yaml"], dvc_repo)
    sh(["dvc", "checkout", "--force"], dvc_repo)


def test_audit_reports_params_and_changes(dvc_repo: Path) -> None:
    geno = dvc_repo / RUN / "derive" / "genotype.json"
    rep = json.loads(sh(["rome", "audit", str(geno), "--json"], dvc_repo).stdout)
    assert rep["search_params"]["search"]["algorithm"] == "rome" and rep["seed"] == 0
    assert rep["stages"]["search"]["dvc_stage"].startswith("search@")
    assert rep["workspace"]["params_unchanged"] and rep["workspace"]["code_unchanged"]
    assert rep["workspace"]["data_unchanged"] and rep["workspace"]["reproducible"]
    changed = json.loads(sh(["rome", "audit", str(geno), "--json", "--set", "search.k_samples=5"], dvc_repo).stdout)
    assert not changed["workspace"]["params_unchanged"] and not changed["workspace"]["reproducible"]
    assert any("search.k_samples" in d for d in changed["workspace"]["params_diff"]["search"])
    text = sh(["rome", "audit", str(dvc_repo / RUN), "--set", "search.k_samples=5"], dvc_repo).stdout
    assert "search.k_samples = 2" in text and "k_samples: 2 -> 5" in text


def test_snakemake_writes_the_same_artifacts(dvc_repo: Path, tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "smk", SMOKE)
    sh(["snakemake", "--cores", "2"], repo)
    def tree(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in (root / "results").rglob("*")
                if p.is_file() and "_ckpt" not in str(p) and p.name != ".snakemake_timestamp"}
    assert tree(repo) == tree(dvc_repo)
    assert (repo / "reports" / "summary.csv").is_file()


def test_wandb_offline_writes_a_run_without_network(tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    from rome.config import resolve
    from rome import tracking

    params = resolve({"preset": "smoke"}, [f"results_dir={tmp_path / 'results'}", "tracking.mode=offline"])
    os.environ.pop("WANDB_MODE", None)
    try:
        with tracking.start(params, "search", ["search"]) as run:
            assert run.active and run.run_id
            run.log({"tau": 1.0}, step=0)
            run.log_table("alpha", ["edge", "op", "p"], [[0, "skip_connect", 0.5]], step=0)
            f = tmp_path / "g.json"
            f.write_text("{}")
            run.log_artifact(f, "genotype", "genotype")
    finally:
        os.environ["WANDB_MODE"] = "disabled"
    runs = list((tmp_path / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].glob("*.wandb"))
