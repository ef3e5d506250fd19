"""``rome search --estimate`` and ``rome table --estimate``: the projection matches the run it projects,
nothing is written, and bad input is one line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ATTEMPTS = 3  # a shared 2-core machine: a neighbour's burst may hit one of the two runs, not the code


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    # one torch thread in both runs: what they share is the machine, not a thread pool fighting it
    return subprocess.run([sys.executable, "-m", "rome.cli", *args, "--threads", "1"], capture_output=True,
                          text=True, cwd=cwd)


def workspace(tmp_path: Path) -> Path:
    (tmp_path / "params.yaml").write_text("preset: smoke\nseed: 0\ndevice: cpu\ndeterministic: false\n"
                                          "tracking: {mode: disabled}\n")
    done = run_cli(tmp_path, "prepare")
    assert done.returncode == 0, done.stderr
    return tmp_path


def projected_seconds(stdout: str) -> float:
    found = re.search(r"= ([\d.]+) s projected", stdout)
    assert found, stdout
    return float(found.group(1))


@pytest.mark.parametrize("hessian", [False, True])
def test_search_estimate_is_within_half_of_the_measured_search(tmp_path: Path, hessian: bool) -> None:
    """The estimate of a 3-epoch smoke search against that search's own loop time (the run record's
    per-epoch seconds: iterations plus validation, plus the eigenvalue when on, as the estimate projects),
    both in fresh processes."""
    ws = workspace(tmp_path)
    flags = ["--set", "search.epochs=3", "--set", "search.steps_per_epoch=4"]
    if hessian:
        flags += ["--set", "search.indicators.hessian_every=2"]
    ratios = []
    for _ in range(ATTEMPTS):
        est = run_cli(ws, "search", *flags, "--estimate")
        assert est.returncode == 0, est.stderr
        assert "per iteration" in est.stdout and "fits" in est.stdout
        assert not (ws / "results" / "mnist5k" / "darts").exists() and not (ws / "state" / "mnist5k" / "darts").exists()
        done = run_cli(ws, "search", *flags)
        assert done.returncode == 0, done.stderr
        record = json.loads(next((ws / "state").rglob("search.run.json")).read_text())
        measured = sum(e["seconds"] + (e.get("hessian_seconds") or 0.0) for e in record["epochs"])
        assert any(e.get("hessian_seconds") for e in record["epochs"]) == hessian
        ratios.append(projected_seconds(est.stdout) / measured)
        if 0.5 <= ratios[-1] <= 1.5:
            break
        subprocess.run(["rm", "-rf", str(ws / "results" / "mnist5k" / "darts"), str(ws / "state")], check=True)
    assert 0.5 <= ratios[-1] <= 1.5, f"estimate / measured over {len(ratios)} attempt(s): {ratios}"


def test_estimate_without_prepared_data_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("preset: smoke\nseed: 0\ndevice: cpu\ndeterministic: false\n")
    done = run_cli(tmp_path, "search", "--estimate")
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("rome search: error:")]
    assert len(errors) == 1 and "manifest.json" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "state").exists()


def test_estimate_is_a_search_option_only(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "derive", "--estimate")
    assert done.returncode == 2 and "unrecognized arguments: --estimate" in done.stderr


TINY_TABLE = {
    "schema_version": 1, "title": "tiny", "source": "test", "metrics": [{"name": "top1", "label": "top-1 (%)"}],
    "seeds": 2, "until": "evaluate", "defaults": {"dataset": "cifar10", "space": "darts", "algorithm": "rome"},
    "rows": {
        "a": {"label": "A", "overrides": {"search.k_samples": 1}, "published": {"top1": {"value": 97.0, "source": "t"}}},
        "a-again": {"label": "A again", "overrides": {"search.k_samples": 1},
                    "published": {"top1": {"value": 97.0, "source": "t"}}},
        "b": {"label": "B", "overrides": {"search.k_samples": 2}, "published": {"top1": {"value": None, "source": "t"}}},
    },
}


def test_table_estimate_names_missing_data_then_projects_rows_seeds_and_retraining(
        tmp_path: Path, monkeypatch, capsys) -> None:
    import shutil

    import yaml

    from rome import cli

    root = shutil.copytree(REPO / "tables", tmp_path / "tables", ignore=shutil.ignore_patterns("runs", "pipelines"))
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY_TABLE, sort_keys=False))
    scales = yaml.safe_load((root / "scales.yaml").read_text())
    scales["smoke"]["seeds"] = 2  # two seeds per row, so the total must multiply
    (root / "scales.yaml").write_text(yaml.safe_dump(scales, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["table", "tiny", "--scale", "smoke", "--estimate"]) == 0
    out = capsys.readouterr().out
    assert "a: no prepared data yet" in out and "not estimated (no prepared data): a, a-again, b" in out
    prepare = [line.strip() for line in out.splitlines() if line.strip().startswith("rome prepare")]
    assert len(prepare) == 1  # one data set for the three rows: one command
    assert cli.main(prepare[0].split()[1:]) == 0
    capsys.readouterr()
    assert cli.main(["table", "tiny", "--scale", "smoke", "--estimate"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split(":")[0]: line for line in lines}
    for row in ("a", "a-again", "b"):
        assert rows[row].startswith(f"{row}: 2 seed(s) x ") and "search " in rows[row] and "train " in rows[row], rows[row]
        assert "0/2 done" in rows[row] and "stand-in cell" in rows[row]
    # a and a-again are one configuration: counted once in the total (2 configurations x 2 seeds)
    assert re.match(r"total: [\d.]+ (s|min) on cpu \(1 threads\) for 4 distinct run\(s\)$", rows["total"]), rows["total"]
    runs = sorted(p.name for p in (tmp_path / "tables" / "runs" / "smoke").iterdir())
    assert len(runs) == 1 and runs[0].startswith("mnist5k-data-")  # the prepared data only: nothing else written


def test_train_estimate_follows_the_runs_layout_and_compile_choice(tmp_path: Path, prepared_smoke: Path) -> None:
    """The projection runs the layout ``auto`` resolves to and, when the stage would compile, projects the
    compiled step (measured ratio x the timed eager step, plus the first call) instead of compiling."""
    import torch

    from conftest import smoke
    from rome.data.prepared import load_prepared
    from rome.layout import use_channels_last
    from rome.training import compile as compile_choice
    from rome.training.estimate import estimate_train

    darts_v2 = REPO / "src" / "rome" / "genotype" / "published" / "darts_v2.json"
    data, cpu = load_prepared(prepared_smoke), torch.device("cpu")
    eager = estimate_train(smoke(tmp_path, f"train.genotype={darts_v2}"), data, cpu)
    layout = "NHWC" if use_channels_last("auto", cpu) else "NCHW"
    assert eager.stage == f"train [{layout}, eager]"  # smoke: train.compile false, the default layout
    compiled = estimate_train(smoke(tmp_path, f"train.genotype={darts_v2}", "train.compile=true"), data, cpu)
    ratio, first = compile_choice.COMPILED_RATIO["cpu"], compile_choice.FIRST_CALL_SECONDS["cpu"]
    assert compiled.stage == f"train [{layout}, compiled: {ratio:g} x the timed eager step + {first:.0f} s first call]"
    assert compiled.startup_seconds >= first and compiled.total_seconds > eager.total_seconds  # 2 x 2 steps never repay it
