"""dvc.yaml and the Snakefile describe the same graph over the same CLI, both built from the stage
table (rome.pipeline.spec): same commands, inputs, outputs, tracked params and code; paths match
rome.paths; nothing switches DVC's run-cache off."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from rome.config import load_params, preset_names, schema
from rome.paths import stage_dir
from rome.pipeline import dvcfile
from rome.pipeline.codedeps import stage_code_files
from rome.pipeline.fingerprint import code_digest
from rome.pipeline.spec import PRESET_SECTIONS, STAGES, TOP_LEVEL
from rome.stages.aggregate import sweep_runs

BIN = Path(sys.executable).parent


def dvc_stages(repo: Path) -> dict[str, dict]:
    """Expanded DVC stages: name -> cmd, deps, outs, params per file (read through DVC's own API)."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        out = {}
        for stage in dvc.index.stages:
            if stage.path_in_repo != "dvc.yaml":  # the paper tables' generated pipelines: tests/test_tables.py
                continue
            params = {Path(d.def_path).as_posix(): list(d.params or []) for d in stage.deps if hasattr(d, "params")}
            out[stage.addressing] = {
                "cmd": " ".join(stage.cmd.split()),
                "deps": {d.def_path for d in stage.deps if not hasattr(d, "params")},
                "outs": {o.def_path for o in stage.outs},
                "persist": {o.def_path for o in stage.outs if o.persist},
                "uncached": {o.def_path for o in stage.outs if not o.use_cache},
                "metrics": {o.def_path for o in stage.outs if o.metric},
                "plots": {o.def_path for o in stage.outs if o.plot},
                "params": params,
            }
        return out


def snakemake_jobs(repo: Path) -> list[dict]:
    """Jobs of a forced dry run: rule, shell command (without threads and log redirection), inputs, outputs."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    res = subprocess.run([str(BIN / "snakemake"), "-n", "-p", "--forceall", "--cores", "1"], cwd=repo,
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr + res.stdout
    jobs = []
    for block in re.split(r"\n(?=\[[^\]]+\]\n(?:local)?rule |(?:local)?rule )", res.stdout):
        m = re.search(r"rule (\w+):", block)
        if not m or m.group(1) == "all":
            continue
        field = lambda name: set(re.search(rf"^\s+{name}: (.*)$", block, re.M).group(1).split(", ")) \
            if re.search(rf"^\s+{name}: ", block, re.M) else set()  # noqa: E731
        shell = re.search(r"^(?:Shell command: )?(rome .*)$", block, re.M).group(1)
        cmd = re.sub(r"\s+>\s+\S+\s+2>&1$", "", shell)
        cmd = re.sub(r"\s+--threads \d+", "", cmd).strip()
        jobs.append({"rule": m.group(1), "cmd": cmd, "input": field("input"), "output": field("output"),
                     "threads": int(re.search(r"--threads (\d+)", shell).group(1)) if "--threads" in shell else None})
    return jobs


@pytest.fixture(scope="module")
def graphs() -> tuple[dict, list]:
    return dvc_stages(REPO), snakemake_jobs(REPO)


def test_dvc_yaml_is_generated_from_the_code() -> None:
    """dvc.yaml is what `rome pipeline --write` makes of the stage table and the imports: nothing by hand."""
    assert (REPO / "dvc.yaml").read_text() == dvcfile.render(), "dvc.yaml is stale: run `rome pipeline --write`"


def test_same_stages_and_commands(graphs) -> None:
    dvc, smk = graphs
    dvc_cmds = {(name.split("@")[0], s["cmd"]) for name, s in dvc.items()}
    smk_cmds = {(j["rule"], j["cmd"]) for j in smk}
    assert smk_cmds == dvc_cmds
    for name, s in dvc.items():
        assert s["cmd"].startswith(f"rome {name.split('@')[0]}"), name


def test_commands_pass_inputs_and_outputs_explicitly(graphs) -> None:
    _, smk = graphs
    for job in smk:
        out = "reports" if job["rule"] == "aggregate" else next(iter(job["output"]))
        assert f"--out {out}" in job["cmd"], job["rule"]
        for folder in job["input"]:
            if job["rule"] != "aggregate" and folder.startswith("results/"):
                assert f"={folder}" in job["cmd"], (job["rule"], folder)


def test_same_inputs_and_outputs(graphs) -> None:
    dvc, smk = graphs
    by_cmd = {s["cmd"]: s for s in dvc.values()}
    for job in smk:
        stage = by_cmd[job["cmd"]]
        if job["rule"] == "aggregate":
            assert job["output"] == stage["outs"]
            continue
        folders = {o.rsplit("/", 1)[0] for o in stage["outs"]}
        assert job["output"] == folders, job["rule"]
        upstream = {d for d in stage["deps"] if d.startswith("results/")}
        assert {i for i in job["input"] if i.startswith("results/")} == upstream, job["rule"]


def test_paths_match_rome_paths(graphs) -> None:
    dvc, _ = graphs
    params = load_params(REPO / "params.yaml")
    expected = set()
    for run in sweep_runs(params):
        expected |= {str(stage_dir(run, s)) for s in ("prepare", "search", "derive", "train", "evaluate")}
    produced = {o.rsplit("/", 1)[0] for s in dvc.values() for o in s["outs"] if o.startswith("results/")}
    assert produced == expected
    assert str(stage_dir(params, "aggregate")) == "reports"


def test_nothing_switches_the_run_cache_off(graphs) -> None:
    """DVC skips its run-cache for any stage with a persist output: checkpoints live in state/ instead."""
    dvc, _ = graphs
    for name, s in dvc.items():
        assert not s["persist"], name
        assert not s["uncached"], name
        assert not any(o.startswith("state/") for o in s["outs"]), name


def test_metrics_and_plots_are_declared_per_run_and_aggregated(graphs) -> None:
    dvc, _ = graphs
    evaluate = next(s for n, s in dvc.items() if n.startswith("evaluate@"))
    assert any(m.endswith("/evaluate/metrics.json") for m in evaluate["metrics"])
    search = next(s for n, s in dvc.items() if n.startswith("search@"))
    assert {Path(p).name for p in search["plots"]} == {"history.csv", "probabilities.csv", "curves.png", "alpha.png"}
    train = next(s for n, s in dvc.items() if n.startswith("train@"))
    assert {Path(p).name for p in train["plots"]} == {"summary.csv", "curves.png"}
    assert dvc["aggregate"]["metrics"] == {"reports/metrics.json"}
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for entry in spec["aggregate"]["plots"]:
        (opts,) = entry.values()
        assert opts["template"] == "series" and opts["x"] == "epoch"  # one line per run, not one zig-zag
    assert (REPO / ".dvc" / "plots" / "series.json").is_file()


def test_params_tracked_per_section_in_params_yaml_and_presets(graphs) -> None:
    dvc, _ = graphs
    props = schema()["properties"]
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    preset = shipped["preset"]
    for name, s in dvc.items():
        spec = STAGES[name.split("@")[0]]
        assert set(s["params"]["params.yaml"]) == {*spec.top_level, *spec.sections}, name
        for key in s["params"]["params.yaml"]:
            assert key in props and key in shipped, f"{name}: {key!r}"
        if spec.params_from_presets:
            files = {f"src/rome/presets/default.yaml", f"src/rome/presets/{preset}.yaml"}
            assert files <= set(s["params"]), name
            for f in files:
                assert set(s["params"][f]) == set(spec.sections), (name, f)


def test_every_params_file_declares_what_dvc_tracks() -> None:
    """DVC refuses a stage whose params key is absent: params.yaml declares every top-level key and
    section, every preset every section (possibly empty)."""
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    assert set(TOP_LEVEL) <= set(shipped) and {"data", "search", "derive", "train", "evaluate", "sweep"} <= set(shipped)
    for name in preset_names():
        doc = yaml.safe_load((REPO / "src/rome/presets" / f"{name}.yaml").read_text())
        missing = [s for s in PRESET_SECTIONS if not isinstance(doc.get(s), dict)]
        assert not missing, f"preset {name} lacks sections {missing}"


def test_code_deps_are_the_imports(graphs) -> None:
    dvc, smk = graphs
    for name, s in dvc.items():
        stage = name.split("@")[0]
        code = {d for d in s["deps"] if d.startswith("src/") and d not in STAGES[stage].extra_deps}  # data, not code
        assert code == set(stage_code_files(stage)), name
        assert f"src/rome/stages/{stage}.py" in code and "src/rome/cli.py" in code
    smk_text = "\n".join((REPO / "workflow" / "rules" / f"{stage}.smk").read_text() for stage in STAGES)
    for stage in STAGES:
        assert f'code=CODE["{stage}"]' in smk_text and f'tracked=tracked("{stage}")' in smk_text
    assert len({code_digest(s) for s in STAGES}) == len(STAGES)


def test_snakemake_rules_have_threads_retries_benchmarks_and_logs() -> None:
    for stage, spec in STAGES.items():
        text = (REPO / "workflow" / "rules" / f"{stage}.smk").read_text()
        assert "threads:" in text and "log:" in text and "> {log} 2>&1" in text, stage
        assert "--out {output}" in text or "--out {params.out}" in text, stage
        if spec.resumable:
            # one GPU per process: search.nproc / train.nproc (rome runs itself under torchrun when > 1)
            assert "retries:" in text and f'gpu=gpus("{stage}")' in text, stage
        if stage != "aggregate":
            assert "benchmark:" in text, stage
    snakefile = (REPO / "Snakefile").read_text()
    local = re.search(r"localrules:\s*((?:\s*\w+,)+)", snakefile).group(1)
    assert {s.strip(", \n") for s in local.split(",") if s.strip()} >= {n for n, s in STAGES.items() if s.local}


def test_slurm_profile_requests_gpus_through_resources_only() -> None:
    """The SLURM plugin refuses --gres/--gpus/--mem/--partition in slurm_extra; gpu=N becomes --gpus=N."""
    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    forbidden = re.compile(r"--(gres|gpus|mem|partition|account|time|cpus-per-task|nodes|ntasks)\b")
    for rule, res in (profile.get("set-resources") or {}).items():
        assert not forbidden.search(str(res.get("slurm_extra", ""))), rule
    assert not forbidden.search(str((profile.get("default-resources") or {}).get("slurm_extra", "")))
    assert profile.get("slurm-status-command") == "squeue"
    # the plugin silently falls back to sacct (which hangs without accounting) when
    # MinJobAge (Slurm's default: 300 s) < 3 x the first poll's delay
    assert 3 * profile["slurm-init-seconds-before-status-checks"] < 300


@pytest.mark.skipif(shutil.which("git") is None, reason="git missing")
def test_snakemake_lint_is_clean() -> None:
    res = subprocess.run([str(BIN / "snakemake"), "--lint"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "good condition" in res.stdout + res.stderr, res.stdout + res.stderr


@pytest.mark.parametrize("config", sorted(p.name for p in (REPO / "benchmarks" / "configs").glob("*.yaml")
                                          if "paper" not in p.name))
def test_every_benchmark_config_builds_its_graph(config: str) -> None:
    """The benchmarks run `snakemake --configfile <config>`: each must build its graph (a dry run), the
    reference-mode ones included (Snakemake hands the file name over as a Path; rome took it as text)."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    res = subprocess.run([str(BIN / "snakemake"), "-n", "--cores", "1", "--configfile", f"benchmarks/configs/{config}"],
                         cwd=REPO, capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:] + res.stdout[-2000:]
