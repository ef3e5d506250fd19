"""The aggregate stage: mean +- std and best over seeds, grouped per dataset/space/algorithm."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import smoke
from rome.errors import RomeError
from rome.paths import stage_dir
from rome.stages import aggregate


def fake_run(params: dict, top1: float, param_free: int) -> None:
    ev = stage_dir(params, "evaluate")
    ev.mkdir(parents=True)
    (ev / "metrics.json").write_text(json.dumps({"top1": top1, "top5": 99.0, "params_m": 0.1}))
    de = stage_dir(params, "derive")
    de.mkdir(parents=True)
    (de / "genotype.json").write_text(json.dumps({"n_param_free": {"normal": param_free, "reduce": 3}}))


def test_mean_std_best(tmp_path: Path) -> None:
    params = smoke(tmp_path / "results", "sweep.seeds=[0, 1, 2]", "sweep.algorithms=[rome, gdas]")
    for run, top1, pf in zip(aggregate.sweep_runs(params), [90, 92, 94, 80, 81, 82], [1, 2, 3, 6, 6, 6]):
        fake_run(run, top1, pf)
    out = aggregate.run(params, stage_dir(params, "aggregate"))
    assert out == tmp_path / "reports"
    metrics = json.loads((out / "metrics.json").read_text())
    rome = metrics["mnist5k/darts/rome"]
    assert rome["n_seeds"] == 3 and rome["top1_mean"] == 92.0 and rome["top1_std"] == 2.0 and rome["top1_best"] == 94.0
    assert rome["param_free_normal_mean"] == 2.0 and rome["param_free_normal_best"] == 1.0
    assert metrics["mnist5k/darts/gdas"]["top1_mean"] == 81.0
    rows = list(csv.DictReader(open(out / "runs.csv")))
    assert len(rows) == 6 and {r["seed"] for r in rows} == {"0", "1", "2"}
    assert (out / "plots" / "search_history.csv").is_file()


def test_missing_run_is_a_clear_error(tmp_path: Path) -> None:
    params = smoke(tmp_path / "results", "sweep.seeds=[0, 1]")
    fake_run(aggregate.sweep_runs(params)[0], 90, 1)
    with pytest.raises(RomeError, match="seed1 of rome is incomplete: .*metrics.json: evaluation metrics not found"):
        aggregate.run(params, stage_dir(params, "aggregate"))


def test_reports_keep_the_digits_the_measurement_supports(tmp_path: Path) -> None:
    from rome.rounding import round_row

    assert round_row({"top1": 97.49999957275391, "top1_std": 0.123456, "loss": 2.3444123, "val_acc": 0.1781234,
                      "params_m": 1.2345678, "n": 3, "arch": "x"}) == {
        "top1": 97.5, "top1_std": 0.12, "loss": 2.344, "val_acc": 0.1781, "params_m": 1.235, "n": 3, "arch": "x"}
    params = smoke(tmp_path / "results", "sweep.seeds=[0, 1]")
    for run, top1 in zip(aggregate.sweep_runs(params), [97.49999957275391, 97.30000042724609]):
        fake_run(run, top1, 1)
    out = aggregate.run(params, stage_dir(params, "aggregate"))
    assert [r["top1"] for r in csv.DictReader(open(out / "runs.csv"))] == ["97.5", "97.3"]
    summary = next(csv.DictReader(open(out / "summary.csv")))
    assert summary["top1_mean"] == "97.4" and summary["top1_std"] == "0.14"
