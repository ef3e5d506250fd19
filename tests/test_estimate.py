"""``rome search --estimate`` and ``rome table --estimate``: the projection matches the run it projects,
nothing is written, and bad input is one line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

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


def test_search_estimate_is_within_half_of_the_measured_search(tmp_path: Path) -> None:
    """The estimate of a 3-epoch smoke search against that search's own loop time (the run record's
    per-epoch seconds: iterations plus validation, as the estimate projects), both in fresh processes."""
    ws = workspace(tmp_path)
    flags = ["--set", "search.epochs=3", "--set", "search.steps_per_epoch=4"]
    ratios = []
    for _ in range(ATTEMPTS):
        est = run_cli(ws, "search", *flags, "--estimate")
        assert est.returncode == 0, est.stderr
        assert "per iteration" in est.stdout and "fits" in est.stdout
        assert not (ws / "results" / "mnist5k" / "darts").exists() and not (ws / "state" / "mnist5k" / "darts").exists()
        done = run_cli(ws, "search", *flags)
        assert done.returncode == 0, done.stderr
        record = json.loads(next((ws / "state").rglob("search.run.json")).read_text())
        measured = sum(e["seconds"] for e in record["epochs"])
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
