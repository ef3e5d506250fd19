"""The SLURM profile on a real Slurm: the smoke pipeline end to end through
snakemake-executor-plugin-slurm, search and train on the `gpu` partition with one GPU each (and with
two GPUs and a 2-process torchrun group each when search.nproc = train.nproc = 2), and a job no node
can hold rejected at submit instead of pending forever.

Needs a running Slurm with partitions `cpu` and `gpu` and a `gpu` GRES; on a Debian machine
`workflow/slurm/setup-one-node.sh` (as root) makes a one-node one. Deselected by default
(`-m "not cluster"` in pyproject.toml); run with `pytest -m cluster`. The evidence that a job got
a GPU is Slurm's own: the job environment (SLURM_GPUS_ON_NODE, SLURM_JOB_GPUS,
CUDA_VISIBLE_DEVICES) that each stage writes into its run record (rome.artifacts.slurm_job).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from test_pipeline import BIN, RUN, SMOKE, copy_repo

PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.yaml"
STATE = Path("state/mnist5k/darts/rome/seed0")
# What a smoke job needs; the profile asks production sizes (4 CPUs, 16-32 GB), more than a small
# test node has, and sbatch would reject them at submit (see test_impossible_job_is_rejected_at_submit).
ONE_NODE = {"cpus_per_task": 1, "mem_mb": 2000}
# the first status poll comes this many seconds after a submission (profile: 20); jobs take seconds here
POLL_S = 5


def cluster_down_reason() -> str | None:
    """Why no cluster test can run here (None when a Slurm with a `gpu` partition has a usable node)."""
    from importlib.util import find_spec

    if find_spec("snakemake_executor_plugin_slurm") is None:
        return 'snakemake-executor-plugin-slurm is not installed: pip install -c requirements.lock -e ".[slurm]"'
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "no Slurm client (sinfo/sbatch) on PATH"
    res = subprocess.run(["sinfo", "-h", "-o", "%P %T"], capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        return f"sinfo failed: {res.stderr.strip()}"
    states = {tuple(line.split()) for line in res.stdout.splitlines() if line.strip()}
    up = {"idle", "mixed", "allocated", "completing"}
    if not any(p.rstrip("*") == "gpu" and s in up for p, s in states):
        return f"no usable node in a `gpu` partition: {sorted(states)}"
    return None


pytestmark = pytest.mark.cluster


@pytest.fixture(autouse=True, scope="module")
def slurm_up() -> None:
    """Skip unless Slurm answers (checked here, not at import: a deselected module must cost nothing)."""
    if (reason := cluster_down_reason()) is not None:
        pytest.skip(reason)


def one_node_profile(dest: Path, **search: int) -> Path:
    """The repo's SLURM profile with only the job sizes shrunk to ONE_NODE (and ``search`` resources set).

    Everything else (executor, partitions per rule, status command, runtimes) is the profile's own.
    """
    cfg = yaml.safe_load(PROFILE.read_text())
    cfg["default-resources"].update(ONE_NODE)
    for resources in cfg["set-resources"].values():
        resources.update({k: v for k, v in ONE_NODE.items() if k in resources})
    cfg["set-resources"]["search"].update(search)
    cfg["slurm-init-seconds-before-status-checks"] = POLL_S
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return dest


def snakemake(repo: Path, profile: Path, *targets: str, timeout: int) -> tuple[int, str]:
    """Run snakemake on ``profile``; on timeout stop it with SIGTERM so it cancels its Slurm jobs."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "WANDB_MODE": "disabled"}
    proc = subprocess.Popen([str(BIN / "snakemake"), "--profile", str(profile), *targets], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        pytest.fail(f"snakemake still running after {timeout} s (hung polling?):\n{out[-4000:]}")
    return proc.returncode, out


def slurm_logs(repo: Path) -> str:
    """The tails of the plugin's per-job Slurm logs, for failure messages."""
    return "\n".join(f"--- {p}\n{p.read_text()[-1500:]}" for p in sorted((repo / ".snakemake").rglob("*.log"))
                     if "slurm_logs" in p.parts)


def record(repo: Path, stage: str) -> dict:
    return json.loads((repo / STATE / f"{stage}.run.json").read_text())


def test_smoke_pipeline_runs_on_slurm_with_gpus_for_search_and_train(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo", SMOKE)
    rc, out = snakemake(repo, one_node_profile(tmp_path / "profile"), timeout=1200)
    assert rc == 0, f"snakemake failed:\n{out[-4000:]}\n{slurm_logs(repo)}"
    assert "7 of 7 steps (100%) done" in out, out[-4000:]
    assert (repo / "reports" / "metrics.json").is_file() and (repo / RUN / "evaluate" / "metrics.json").is_file()

    jobs = {}
    for stage in ("search", "train"):
        slurm = record(repo, stage)["slurm"]
        assert slurm is not None, f"{stage} did not run as a Slurm job"
        assert slurm["SLURM_JOB_PARTITION"] == "gpu", slurm
        assert slurm["SLURM_GPUS_ON_NODE"] == "1", slurm
        # the rule runs in an srun step inside the batch job: Slurm names the step's GPUs there
        gpus = slurm["SLURM_STEP_GPUS"] or slurm["SLURM_JOB_GPUS"]
        assert gpus and len(gpus.split(",")) == 1, slurm
        assert slurm["CUDA_VISIBLE_DEVICES"] and len(slurm["CUDA_VISIBLE_DEVICES"].split(",")) == 1, slurm
        jobs[stage] = slurm["SLURM_JOB_ID"]
    evaluate = record(repo, "evaluate")["slurm"]
    assert evaluate is not None and evaluate["SLURM_JOB_PARTITION"] == "cpu", evaluate
    assert evaluate["SLURM_GPUS_ON_NODE"] in (None, "0") and not evaluate["SLURM_STEP_GPUS"], evaluate
    assert not evaluate["SLURM_JOB_GPUS"] and not evaluate["CUDA_VISIBLE_DEVICES"], evaluate
    assert len({*jobs.values(), evaluate["SLURM_JOB_ID"]}) == 3, (jobs, evaluate)
    # localrules (prepare, derive) run on the submitting host, outside Slurm
    assert record(repo, "derive")["slurm"] is None
    assert json.loads((repo / STATE.parents[2] / "prepare.run.json").read_text())["slurm"] is None


def test_impossible_job_is_rejected_at_submit(tmp_path: Path) -> None:
    cpus = max(int(c) for c in subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True,
                                              check=True).stdout.split())
    repo = copy_repo(tmp_path / "repo", SMOKE)
    profile = one_node_profile(tmp_path / "profile", cpus_per_task=cpus + 1)
    rc, out = snakemake(repo, profile, f"{RUN}/search", timeout=600)
    assert rc != 0, out[-4000:]
    assert "SLURM sbatch failed" in out and "More processors requested than permitted" in out, out[-4000:]
    assert not (repo / RUN / "search").exists()


def test_multi_process_search_and_train_jobs_get_one_gpu_per_process(tmp_path: Path) -> None:
    """search.nproc = train.nproc = 2: each job asks 2 GPUs (resources gpu = nproc), and rome runs
    torchrun inside it (2 gloo processes on this CPU node; the stand-in GPUs are device files)."""
    params = {**SMOKE, "search": {"nproc": 2, "k_samples": 2}, "train": {"nproc": 2}}
    repo = copy_repo(tmp_path / "repo", params)
    profile = one_node_profile(tmp_path / "profile", mem_mb=4000)
    cfg = yaml.safe_load((profile / "config.yaml").read_text())
    cfg["set-resources"]["train"]["mem_mb"] = 4000  # two processes per job
    (profile / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    rc, out = snakemake(repo, profile, timeout=1200)
    assert rc == 0, f"snakemake failed:\n{out[-4000:]}\n{slurm_logs(repo)}"
    assert "7 of 7 steps (100%) done" in out, out[-4000:]
    for stage in ("search", "train"):
        rec = record(repo, stage)
        slurm = rec["slurm"]
        assert slurm is not None and slurm["SLURM_JOB_PARTITION"] == "gpu", slurm
        assert slurm["SLURM_GPUS_ON_NODE"] == "2", slurm
        assert len(slurm["CUDA_VISIBLE_DEVICES"].split(",")) == 2, slurm
        assert rec["processes"] == 2, rec  # rank 0 of a 2-process torchrun group wrote the record
