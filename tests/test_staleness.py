"""Every result is a function of what DVC and Snakemake can see: change one input of each kind
(a params key per section, a preset value, each stage's code, the data) in a committed smoke
pipeline and exactly the stages that read it go stale; same inputs give the same bytes; DVC's
experiments show real params and metrics, and returning to a params set restores from the run-cache."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, copy_working_tree
from rome.pipeline.codedeps import stage_code_files
from rome.pipeline.spec import STAGES

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
RUN = "results/mnist5k/darts/rome/seed0"
SMOKE = {"preset": "smoke", "seed": 0, "device": "cpu", "deterministic": True, "data": {}, "search": {},
         "derive": {}, "train": {}, "evaluate": {}, "tracking": {"mode": "disabled"},
         "sweep": {"seeds": [0], "spaces": ["darts"], "datasets": ["mnist5k"], "algorithms": ["rome"]}}
ALL = set(STAGES)


def env_for(repo: Path) -> dict[str, str]:
    # the copy's own src first: its `rome` runs (and Snakemake hashes) the copy's code, not the checkout's
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "PYTHONPATH": str(repo / "src"),
            "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}


def sh(cmd: list[str], repo: Path, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=env_for(repo), timeout=900)
    if check:
        assert res.returncode == 0, f"{cmd}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def git(repo: Path, *args: str) -> None:
    sh(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], repo)


def copy_repo(dest: Path) -> Path:
    copy_working_tree(dest)
    (dest / "params.yaml").write_text(yaml.safe_dump(SMOKE, sort_keys=False))
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "copy")
    return dest


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "results").rglob("*")) + sorted((root / "reports").rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = copy_repo(tmp_path_factory.mktemp("stale"))
    sh(["dvc", "repro"], repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "repro")
    return repo


def dvc_outdated(repo: Path) -> set[str]:
    status = json.loads(sh(["dvc", "status", "--json"], repo).stdout or "{}")
    return {name.split("@")[0] for name in status}


def edit(repo: Path, rel: str, change) -> None:
    path = repo / rel
    path.write_text(change(path.read_text()))


def set_yaml(repo: Path, rel: str, section: str, key: str, value) -> None:
    doc = yaml.safe_load((repo / rel).read_text()) or {}
    if key is None:
        doc[section] = value
    else:
        doc.setdefault(section, {})[key] = value
    (repo / rel).write_text(yaml.safe_dump(doc, sort_keys=False))


def restore(repo: Path) -> None:
    git(repo, "checkout", "--", ".")


PARAMS_CASES = [
    ("params.yaml", "data", "resize", 7, {"prepare"}),
    ("params.yaml", "search", "epochs", 3, {"search"}),
    ("params.yaml", "derive", "plot", False, {"derive"}),
    ("params.yaml", "train", "lr", 0.05, {"train"}),
    ("params.yaml", "evaluate", "batch_size", 32, {"evaluate"}),
    ("params.yaml", "deterministic", None, False, {"search", "train", "evaluate"}),
    ("params.yaml", "tracking", "project", "other", set()),  # W&B only: never a rerun
    ("src/rome/presets/smoke.yaml", "search", "epochs", 3, {"search"}),  # the selected preset
    ("src/rome/presets/smoke.yaml", "train", "lr", 0.05, {"train"}),
    ("src/rome/presets/smoke.yaml", "derive", "plot", False, {"derive"}),
    ("src/rome/presets/default.yaml", "evaluate", "latency_batches", 3, {"evaluate"}),  # the base layer
    ("src/rome/presets/paper.yaml", "search", "epochs", 3, set()),  # a preset nobody selected
]


@pytest.mark.parametrize(("file", "section", "key", "value", "expected"), PARAMS_CASES)
def test_dvc_sees_every_params_layer(dvc_repo: Path, file, section, key, value, expected) -> None:
    assert dvc_outdated(dvc_repo) == set()
    set_yaml(dvc_repo, file, section, key, value)
    try:
        assert dvc_outdated(dvc_repo) == expected
    finally:
        restore(dvc_repo)


def test_dvc_params_diff_shows_real_preset_values(dvc_repo: Path) -> None:
    set_yaml(dvc_repo, "src/rome/presets/smoke.yaml", "search", "epochs", 3)
    try:
        diff = json.loads(sh(["dvc", "params", "diff", "--json"], dvc_repo).stdout)
        change = diff["src/rome/presets/smoke.yaml"]["search.epochs"]
        assert (change["old"], change["new"]) == (2, 3)
    finally:
        restore(dvc_repo)


CODE_FILES = ["src/rome/spaces/ops.py", "src/rome/genotype/derivation.py", "src/rome/config.py", "src/rome/artifacts.py",
              "src/rome/schema/params.schema.yaml", *(f"src/rome/stages/{s}.py" for s in STAGES)]


@pytest.mark.parametrize("rel", CODE_FILES)
def test_dvc_sees_the_code_each_stage_imports(dvc_repo: Path, rel: str) -> None:
    expected = {s for s in STAGES if rel in stage_code_files(s)}
    edit(dvc_repo, rel, lambda text: text + "\n# an edit\n")
    try:
        assert dvc_outdated(dvc_repo) == expected
    finally:
        restore(dvc_repo)


def test_the_issue_rows_for_code(dvc_repo: Path) -> None:
    """The rows that were stale before: ops.py reaches search, train and evaluate; genotype/derivation.py the
    search too (search.json is built with it); config.py every stage."""
    assert {"search", "train", "evaluate"} <= {s for s in STAGES if "src/rome/spaces/ops.py" in stage_code_files(s)}
    assert {"search", "derive"} <= {s for s in STAGES if "src/rome/genotype/derivation.py" in stage_code_files(s)}
    assert {s for s in STAGES if "src/rome/config.py" in stage_code_files(s)} == ALL


def test_prepare_twice_is_byte_identical_and_outdates_nothing(dvc_repo: Path) -> None:
    before = tree_digest(dvc_repo)
    sh(["dvc", "repro", "-f", "-s", "prepare@mnist5k"], dvc_repo)
    assert tree_digest(dvc_repo) == before
    assert dvc_outdated(dvc_repo) == set()


def test_forced_rerun_of_everything_is_byte_identical(dvc_repo: Path) -> None:
    """deterministic: true on the CPU: every stage rerun on the same inputs writes the same bytes."""
    before = tree_digest(dvc_repo)
    sh(["dvc", "repro", "-f"], dvc_repo)
    after = tree_digest(dvc_repo)
    assert after == before, sorted(k for k in after if after.get(k) != before.get(k))
    assert (dvc_repo / "state" / "mnist5k" / "darts" / "rome" / "seed0" / "search.run.json").is_file()


def test_experiments_show_metrics_and_return_from_the_run_cache(dvc_repo: Path) -> None:
    sh(["dvc", "exp", "run", "-n", "k3", "-S", "++search.k_samples=3"], dvc_repo)
    sh(["dvc", "exp", "run", "-n", "k1", "-S", "++search.k_samples=1"], dvc_repo)
    shown = json.loads(sh(["dvc", "exp", "show", "--json"], dvc_repo).stdout)
    text = json.dumps(shown)
    for name in ("k3", "k1"):
        assert f'"{name}"' in text
    # each experiment's metrics are in the table (not "!"): the per-run and aggregated metrics files
    exps = [e for row in shown for e in (row.get("experiments") or []) for e in (e.get("revs") or [])]
    metrics = [json.dumps((e.get("data") or {}).get("metrics") or {}) for e in exps]
    assert len(metrics) >= 2 and all("reports/metrics.json" in m and "top1" in m for m in metrics)
    # back to k_samples=3: the search, train and evaluate come from DVC's run-cache, not recomputed
    back = sh(["dvc", "exp", "run", "-n", "k3-again", "-S", "++search.k_samples=3"], dvc_repo).stdout
    assert not re.search(r"Running stage 'search@", back), back
    assert re.search(r"Stage 'search@[^']+' is cached - skipping run", back), back
    diff = json.loads(sh(["dvc", "metrics", "diff", "--json", "HEAD", "k1"], dvc_repo).stdout or "{}")
    assert any(path.endswith("metrics.json") for path in diff)
    plots = json.loads(sh(["dvc", "plots", "diff", "--json", "HEAD", "k1"], dvc_repo).stdout)
    assert plots.get("data")
    sh(["dvc", "exp", "apply", "k3"], dvc_repo)
    restore(dvc_repo)
    sh(["dvc", "checkout", "--force"], dvc_repo)


# Snakemake: a dry run after each change lists the jobs it would run (the stale ones and their downstream).
DOWNSTREAM = {"prepare": ALL, "search": ALL - {"prepare"}, "derive": {"derive", "train", "evaluate", "aggregate"},
              "train": {"train", "evaluate", "aggregate"}, "evaluate": {"evaluate", "aggregate"},
              "aggregate": {"aggregate"}}


@pytest.fixture(scope="module")
def smk_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = copy_repo(tmp_path_factory.mktemp("smk"))
    sh(["snakemake", "--cores", "2"], repo)
    return repo


def smk_jobs(repo: Path) -> set[str]:
    out = sh(["snakemake", "-n", "--cores", "1"], repo).stdout
    if "Nothing to be done" in out:
        return set()
    table = out.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+\s*$", table, re.M)} - {"all", "job"}


SMK_CASES = [
    ("params.yaml", "search", "epochs", 3, DOWNSTREAM["search"]),
    ("params.yaml", "train", "lr", 0.05, DOWNSTREAM["train"]),
    ("params.yaml", "evaluate", "batch_size", 32, DOWNSTREAM["evaluate"]),
    ("src/rome/presets/smoke.yaml", "search", "epochs", 3, DOWNSTREAM["search"]),
    ("src/rome/presets/smoke.yaml", "derive", "plot", False, DOWNSTREAM["derive"]),
    ("src/rome/presets/paper.yaml", "search", "epochs", 3, set()),
    ("params.yaml", "tracking", "project", "other", set()),
]


@pytest.mark.parametrize(("file", "section", "key", "value", "expected"), SMK_CASES)
def test_snakemake_sees_every_params_layer(smk_repo: Path, file, section, key, value, expected) -> None:
    assert smk_jobs(smk_repo) == set()
    set_yaml(smk_repo, file, section, key, value)
    try:
        assert smk_jobs(smk_repo) == expected
    finally:
        restore(smk_repo)


@pytest.mark.parametrize("rel", ["src/rome/spaces/ops.py", "src/rome/config.py", "src/rome/stages/derive.py",
                                 "src/rome/stages/evaluate.py"])
def test_snakemake_sees_the_code_each_stage_imports(smk_repo: Path, rel: str) -> None:
    edit(smk_repo, rel, lambda text: text + "\n# an edit\n")
    try:
        stale = {s for s in STAGES if rel in stage_code_files(s)}
        expected = set().union(*(DOWNSTREAM[s] for s in stale)) if stale else set()
        assert smk_jobs(smk_repo) == expected
    finally:
        restore(smk_repo)


def test_audit_names_what_differs_params_code_and_data(dvc_repo: Path) -> None:
    geno = str(dvc_repo / RUN / "derive" / "genotype.json")
    rep = json.loads(sh(["rome", "audit", geno, "--json"], dvc_repo).stdout)
    ws = rep["workspace"]
    assert ws["reproducible"] and ws["params_unchanged"] and ws["code_unchanged"] and ws["data_unchanged"]
    assert rep["stages"]["search"]["dvc_stage"].startswith("search@") and rep["stages"]["search"]["commit"]
    edit(dvc_repo, "src/rome/spaces/ops.py", lambda text: text + "\n# an edit\n")
    set_yaml(dvc_repo, "src/rome/presets/smoke.yaml", "search", "epochs", 3)
    try:
        rep = json.loads(sh(["rome", "audit", geno, "--json"], dvc_repo).stdout)
        ws = rep["workspace"]
        assert not ws["reproducible"] and ws["data_unchanged"]
        assert "src/rome/spaces/ops.py: changed" in ws["code_diff"]["search"]
        assert any(d.startswith("search.epochs: 2 -> 3") for d in ws["params_diff"]["search"])
        text = sh(["rome", "audit", geno], dvc_repo).stdout
        assert "[search] src/rome/spaces/ops.py: changed" in text and "[search] search.epochs: 2 -> 3" in text
    finally:
        restore(dvc_repo)
