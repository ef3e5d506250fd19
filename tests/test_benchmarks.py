"""Benchmark code paths at toy size: result documents, README splicing, ratios and targets, the memory
measurement, and the readers/tables/plots of the pipeline benchmarks on real (smoke-sized) stage outputs.
No timing is ever asserted."""

from __future__ import annotations

import argparse
import csv
import itertools
import json
from pathlib import Path

import pytest


# benchmarks/ is a top-level package beside src/ (pytest's pythonpath = ["."] makes it importable)
from benchmarks import collapse, compile_trend, memory, nb201, pipeline, report, speed
from benchmarks.__main__ import main as bench_main
from conftest import smoke  # noqa: E402
from rome.errors import RomeError  # noqa: E402
from rome.paths import stage_dir  # noqa: E402
from rome.spaces.ops import NB201_OPS  # noqa: E402
from rome.stages import aggregate, derive, evaluate, prepare, search, train  # noqa: E402


# ----------------------------------------------------------------------------- report


def test_splice_replaces_only_between_markers() -> None:
    text = "# Title\n\nintro\n"
    once = report.splice(text, "x", "| a |")
    assert once.startswith("# Title\n\nintro\n") and "<!-- bench:x:begin -->\n| a |\n<!-- bench:x:end -->" in once
    twice = report.splice(once + "\nafter\n", "x", "| b |")
    assert "| a |" not in twice and "| b |" in twice and twice.rstrip().endswith("after")
    assert report.splice(twice, "y", "other").count("bench:x:begin") == 1


def test_splice_refuses_broken_markers() -> None:
    begin, end = report.markers("x")
    with pytest.raises(RomeError, match="markers"):
        report.splice(f"{end}\n{begin}\n", "x", "body")


def test_result_document_fields_and_roundtrip(tmp_path: Path) -> None:
    doc = report.result_document("demo", "python -m benchmarks demo", {"a": 1}, {"b": 2})
    for field in report.REQUIRED_FIELDS:
        assert field in doc
    assert doc["machine"]["hostname"] and "torch" in doc["machine"]
    assert "commit" in doc["git"]
    path = report.write_result(doc, tmp_path / "demo.json")
    assert report.load_result(path)["figures"] == {"a": 1}
    del doc["paper"]
    with pytest.raises(RomeError, match="paper"):
        report.write_result(doc, tmp_path / "bad.json")


def test_command_line_and_formatting() -> None:
    assert report.command_line("memory", ["memory", "--batch", "8"]) == "python -m benchmarks memory --batch 8"
    assert report.command_line("nb201", ["--scale", "paper"]) == "python -m benchmarks nb201 --scale paper"
    assert report.pm(1.234, 0.5) == "1.23 ± 0.50" and report.pm(float("nan"), 0.0) == "–"
    assert report.mean_std([1.0, 3.0]) == (2.0, pytest.approx(2 ** 0.5))
    assert report.mean_std([4.0]) == (4.0, 0.0)
    table = report.markdown_table(["a", "b"], [[1, None], [0.5, "x"]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | – |", "| 0.50 | x |"]


# ----------------------------------------------------------------------------- memory


def _row(label: str, saved: int, rss: float, secs: float, mean_frac: float = 0.8) -> dict:
    cfg = memory.parse_config(label)
    return {"label": cfg["label"], "algorithm": cfg["algorithm"], "k_samples": cfg["k_samples"],
            "variant": cfg["variant"], "saved_bytes": saved, "saved_mb": round(saved / 2**20, 1),
            "saved_mean_mb": round(mean_frac * saved / 2**20, 1), "saved_live_mb": round(saved / 2**20, 1),
            "rss_delta_mb": rss, "rss_delta_mean_mb": mean_frac * rss, "rss_delta_median_mb": mean_frac * rss,
            "seconds_per_iteration": secs, "seconds_per_pass": secs / 2, "passes": 14, "iterations": 7}


def test_ratios_use_exact_bytes_and_judge_targets() -> None:
    rows = [_row("darts", 1000 * 2**20, 800.0, 10.0), _row("gdas", 300 * 2**20, 400.0, 2.0),
            _row("rome:1", 200 * 2**20, 350.0, 1.0), _row("rome:7", 200 * 2**20 + 1, 380.0, 7.0),
            _row("rome:7@before", 250 * 2**20, 390.0, 7.0)]
    metrics = memory.metrics_for("cpu")
    memory.add_ratios(rows, metrics)
    rome1 = rows[2]
    assert rome1["saved_mb_vs_darts"] == 0.2 and rome1["saved_mb_vs_gdas"] == pytest.approx(0.667, abs=1e-3)
    assert rome1["seconds_vs_darts"] == 0.1 and rows[0]["saved_mb_vs_darts"] == 1.0
    assert rome1["rss_delta_mean_mb_vs_gdas"] == 0.875 and rome1["saved_mean_mb_vs_darts"] == 0.2
    checks = memory.check_targets(rows, metrics)
    assert {c["config"] for c in checks} == {"rome:1", "rome:7"}  # only plain ROME rows are judged
    by = {(c["config"], c["metric"], c["reference"]): c for c in checks}
    assert by[("rome:1", "saved_mb", "darts")]["met"] is True
    assert by[("rome:1", "saved_mb", "gdas")]["met"] is True
    assert by[("rome:1", "rss_delta_mb", "darts")]["met"] is False  # 350 / 800 = 0.44 > 0.25
    assert by[("rome:1", "rss_delta_mb", "gdas")]["ratio"] == 0.875
    assert ("rome:1", "rss_delta_mean_mb", "gdas") in by  # the mean over passes is judged too


def test_before_after_pairs_each_variant_with_its_plain_row() -> None:
    rows = [_row("rome:7", 200 * 2**20, 380.0, 7.0), _row("rome:7@before", 250 * 2**20, 400.0, 7.5),
            _row("gdas@before", 1, 1.0, 1.0)]  # no plain gdas row: nothing to compare
    got = memory.before_after(rows, memory.metrics_for("cpu"))
    assert [(e["config"], e["step"]) for e in got] == [("rome:7", "before")]
    assert got[0]["saved_mb"] == {"before": 250.0, "after": 200.0, "ratio": 0.8}
    assert got[0]["rss_delta_mb"]["ratio"] == 0.95


def test_ratios_without_reference_are_none() -> None:
    rows = [_row("rome:1", 10, 1.0, 1.0)]
    memory.add_ratios(rows, ["saved_mb"])
    assert rows[0]["saved_mb_vs_darts"] is None
    assert memory.check_targets(rows, ["saved_mb"])[0]["met"] is None


def test_parse_config() -> None:
    assert memory.parse_config("rome:7") == {"label": "rome:7", "algorithm": "rome", "k_samples": 7, "variant": None}
    assert memory.parse_config("gdas") == {"label": "gdas", "algorithm": "gdas", "k_samples": 1, "variant": None}
    assert memory.parse_config("rome:7@before")["variant"] == "before"
    assert memory.parse_config("gdas@worst") == {"label": "gdas@worst", "algorithm": "gdas", "k_samples": 1,
                                                 "variant": "worst"}
    with pytest.raises(ValueError, match="unknown configuration"):
        memory.parse_config("pcdarts")
    with pytest.raises(ValueError, match="unknown variant"):
        memory.parse_config("rome:7@best")
    with pytest.raises(ValueError, match="worst case exists"):
        memory.parse_config("darts@worst")


SIZES = dict(layers=3, init_channels=2, batch_size=2, resolution=8, warmup=1)


def test_measure_toy_equal_passes_orders_memory_by_executed_ops() -> None:
    """DARTS runs every op, GDAS one per edge (14), ROME 8 edges; every configuration over the same passes."""
    got = {c: memory.measure(memory.parse_config(c), passes=4, **SIZES) for c in ("darts", "gdas", "rome:1", "rome:2")}
    assert got["rome:1"]["saved_bytes"] < got["gdas"]["saved_bytes"] < got["darts"]["saved_bytes"]
    assert got["rome:2"]["k_samples"] == 2 and got["gdas"]["k_samples"] == 1
    assert {c: (r["iterations"], r["passes"]) for c, r in got.items()} == {
        "darts": (2, 4), "gdas": (2, 4), "rome:1": (2, 4), "rome:2": (1, 4)}
    for row in got.values():
        assert row["saved_passes"] == row["passes"] == len(row["saved_per_pass_mb"])
        assert row["saved_min_mb"] <= row["saved_mean_mb"] <= row["saved_mb"] <= row["saved_live_mb"]
        assert row["timer"] == "perf_counter" and row["seconds_per_iteration"] > 0 and row["rss_process_mb"] > 0
        if row["rss_per_pass"]:  # Linux lets a process reset its peak RSS: one reading per pass
            assert len(row["rss_per_pass_mb"]) == row["passes"] and row["rss_mean_mb"] <= row["rss_peak_mb"]
        assert "cuda_peak_mb" not in row
    base = memory.measure(memory.parse_config("baseline"), **SIZES)
    assert "saved_bytes" not in base and base["rss_peak_mb"] > 0


def test_measure_toy_before_keeps_the_untraversed_graph_alive() -> None:
    """The old arch step saves the weight-only activations and holds them into the next pass; the current one not."""
    sizes = dict(layers=3, init_channels=8, batch_size=8, resolution=16, warmup=1, passes=6)  # MB-rounded: not tiny
    after = memory.measure(memory.parse_config("rome:3"), **sizes)
    before = memory.measure(memory.parse_config("rome:3@before"), **sizes)
    freed = memory.measure(memory.parse_config("rome:3@freed"), **sizes)
    k = 3  # per iteration: 3 arch passes, then 3 weight passes; the draws are the same in the three runs
    arch = slice(0, k)
    assert all(a < b for a, b in zip(after["saved_per_pass_mb"][arch], before["saved_per_pass_mb"][arch]))
    assert after["saved_per_pass_mb"][k:] == before["saved_per_pass_mb"][k:]
    assert before["saved_live_mb"] > before["saved_mb"]  # pass k+1 ran while pass k's stem activations were alive
    assert freed["saved_live_mb"] == freed["saved_mb"] and after["saved_live_mb"] == after["saved_mb"]


def test_worst_case_bounds_every_drawn_sub_network() -> None:
    """The measured heaviest sub-network saves at least as much as any sub-network the method draws."""
    settings = dict(layers=3, init_channels=4, batch_size=2, resolution=8)
    worst = memory.probe(**settings)
    for name, per_pass in (("gdas", 2), ("rome", 2)):
        edges = {ct: d["edges"] for ct, d in worst[name]["described"].items()}
        assert all(len(e) == (14 if name == "gdas" else 8) for e in edges.values())
        bound = memory.measure(memory.parse_config(f"{name}@worst"), worst=worst, passes=2, warmup=1, **settings)
        drawn = memory.measure(memory.parse_config(name), passes=24, warmup=1, **settings)
        # K = 1: passes alternate architecture (even) and weight (odd), which save different things
        arch_bound, weight_bound = bound["saved_per_pass_mb"]
        assert max(drawn["saved_per_pass_mb"][0::2]) <= arch_bound
        assert max(drawn["saved_per_pass_mb"][1::2]) <= weight_bound
        assert max(drawn["saved_per_pass_mb"]) < bound["saved_mb"] * 1.5  # and a bound close to what is drawn
    with pytest.raises(RomeError, match="probe"):
        memory.measure(memory.parse_config("rome@worst"), passes=2, **SIZES)


def test_measure_toy_places_pc_darts_between_gdas_and_darts() -> None:
    """PC-DARTS runs every op as DARTS, but on 1/4 of the channels: more than GDAS's 14 ops, far less than DARTS."""
    assert "pc_darts" in memory.DEFAULT_CONFIGS and memory.PAPER["peak_memory_gb"]["pc_darts"] == 3.7
    sizes = dict(layers=3, init_channels=8, batch_size=2, resolution=8, warmup=1, passes=4, mixed_passes=2)
    rows = {c: memory.measure(memory.parse_config(c), **sizes) for c in ("darts", "pc_darts", "gdas")}
    got = {c: r["saved_bytes"] for c, r in rows.items()}
    assert got["gdas"] < got["pc_darts"] < got["darts"] / 2
    assert {c: r["passes"] for c, r in rows.items()} == {"darts": 2, "pc_darts": 2, "gdas": 4}  # --mixed-passes


def test_memory_table_lists_rows_bounds_savings_targets_and_paper() -> None:
    rows = [_row("darts", 1000 * 2**20, 800.0, 10.0), _row("gdas", 300 * 2**20, 400.0, 2.0),
            _row("rome:1", 200 * 2**20, 350.0, 1.0), _row("rome@worst", 250 * 2**20, 420.0, 1.0),
            _row("rome:1@before", 220 * 2**20, 360.0, 1.0)]
    metrics = memory.metrics_for("cpu")
    memory.add_ratios(rows, metrics)
    worst = {"rome": {"described": {"normal": {"edges": [[0, "sep_conv_3x3"]] * 8}}}}
    figures = {"device": "cpu", "settings": {"space": "darts", "batch_size": 64, "layers": 8, "init_channels": 16,
                                              "resolution": 32, "warmup": 1, "passes": 14, "mixed_passes": 2},
               "baseline_rss_mb": 700.0, "rows": rows, "targets": memory.check_targets(rows, metrics),
               "worst_case": worst, "before_after": memory.before_after(rows, metrics), "memory_metrics": metrics}
    doc = report.result_document("memory", "python -m benchmarks memory", figures, memory.PAPER)
    text = memory.table(doc)
    assert "| rome:1 | 1 | 14 (7) | 200.0 / 160.0 | 350.0 / 280.0 | 0.200 / 0.200 | 0.667 / 0.667 |" in text
    assert "| rome@worst | normal: 8 edges: 8 sep_conv_3x3 | 250.0 | 420.0 |" in text
    assert "| rome:1 | before | 220.0 → 200.0 (× 0.909) |" in text
    assert "| darts | 1 |" in text and "9.4" in text and "2.3" in text
    assert "PC-DARTS, which run one network on every pass: 2) after 1 warm-up" in text
    assert "met" in text and "missed" in text and "commit" in text


def test_ddp_table_and_argument_check(capsys: pytest.CaptureFixture) -> None:
    from benchmarks import ddp

    settings = {"device": "cpu", "nproc": 2, "k": 4, "space": "darts", "batch": 32, "layers": 5, "channels": 8,
                "resolution": 16, "warmup": 2, "repeats": 10}
    rows = [{"label": "1p x 2t", "processes": 1, "threads_per_process": 2, "parallel": None,
             "seconds_per_iteration": 0.5, "images_per_second": 128.0, "speedup": 1.0},
            {"label": "2p draws", "processes": 2, "threads_per_process": 1, "parallel": "draws",
             "seconds_per_iteration": 0.4, "images_per_second": 160.0, "speedup": 1.25}]
    doc = report.result_document("ddp", "python -m benchmarks ddp", {"settings": settings, "rows": rows}, ddp.PAPER)
    text = ddp.table(doc)
    assert "| 2p draws | 2 | 1 | draws | 0.400 | 160.0 | 1.25 |" in text
    assert "64 images" in text and "commit" in text
    assert bench_main(["ddp", "--nproc", "2", "--batch", "7", "--no-readme"]) == 2
    assert "dividing the batch" in capsys.readouterr().err


def test_memory_command_rejects_bad_config(capsys: pytest.CaptureFixture) -> None:
    assert bench_main(["memory", "--configs", "darts,foo", "--no-readme"]) == 2
    assert "unknown configuration 'foo'" in capsys.readouterr().err


def test_speed_tiny_run_writes_every_field(tmp_path: Path) -> None:
    """One algorithm at tiny size, one repeat: two fresh processes (NCHW eager, channels_last), a result JSON."""
    out = tmp_path / "speed.json"
    assert bench_main(["speed", "--size", "tiny", "--configs", "rome:1", "--repeats", "1", "--iters", "1",
                       "--threads", "1", "--out", str(out), "--no-readme"]) == 0
    doc = report.load_result(out)
    assert doc["benchmark"] == "speed" and doc["git"]["commit"] and doc["machine"]["torch"]
    assert doc["load_average_before"] is not None and doc["load_average_after"] is not None
    f = doc["figures"]
    assert f["settings"]["batch_size"] == 2 and f["settings"]["layers"] == 2 and f["settings"]["threads"] == 1
    assert {(r["config"], r["variant"]) for r in f["rows"]} == {("rome:1", "eager"), ("rome:1", "cl")}
    assert all(r["torch_threads"] == 1 and r["device"] == "cpu" for r in f["runs"])
    for r in f["rows"]:
        assert r["seconds_per_iteration"] > 0 and r["first_call_s"] > 0 and len(r["repeats_s"]) == 1
    eager = next(r for r in f["rows"] if r["variant"] == "eager")
    assert eager["ratio_vs_eager"] == 1.0
    assert [t["config"] for t in f["targets"]] == ["rome:1"]
    assert "search iteration, rome:1" in speed.table(doc)


def test_compile_trend_measures_each_step_and_summarises_blocks() -> None:
    """The child's measurement (eager, tiny, in-process): one time and one fault count per step; then the
    summary of synthetic runs: block medians, the steady state after the first block, the ratio to eager."""
    settings = {**speed.SIZES["tiny"], "device": "cpu", "threads": 1, "steps": 3, "block": 2, "allocator": "kept", "seed": 0}
    r = compile_trend.measure("eager", settings)
    assert len(r["seconds"]) == len(r["minor_faults"]) == 3 and r["first_call_s"] > 0 and r["torch_threads"] == 1
    assert all(t > 0 for t in r["seconds"]) and all(f >= 0 for f in r["minor_faults"])

    assert compile_trend.block_medians([5, 1, 3, 2, 2, 9, 4], 3) == [3, 2, 4]

    def run(variant: str, seconds: list[float], rnd: int) -> dict:
        return {"variant": variant, "first_call_s": 90.0 if variant == "cold" else 1.0, "seconds": seconds,
                "minor_faults": [10] * len(seconds), "repeat": rnd}

    runs = [run("cold", [0.6, 0.6, 0.45, 0.45], 0), run("cold", [0.7, 0.5, 0.43, 0.47], 1),
            run("warm", [0.4] * 4, 0), run("warm", [0.42] * 4, 1), run("eager", [0.5] * 4, 0), run("eager", [0.5] * 4, 1)]
    rows = {r["variant"]: r for r in compile_trend.summarise(runs, block=2)}
    assert rows["cold"]["block_medians"] == [0.6, 0.45]  # the slow start shows in the first block only
    assert rows["cold"]["steady_seconds"] == 0.45 and rows["cold"]["ratio_vs_eager"] == 0.9
    assert rows["warm"]["ratio_vs_eager"] == 0.82 and rows["eager"]["ratio_vs_eager"] == 1.0
    assert rows["cold"]["first_call_s"] == 90.0 and rows["cold"]["minor_faults_per_step"] == 10
    doc = report.result_document("compile_trend", "python -m benchmarks compile_trend", {
        "device": "cpu", "runs": runs, "rows": list(rows.values()), "wall_seconds": 1,
        "settings": {**settings, "steps": 4, "repeats": 2, "allocator": "kept"}}, compile_trend.PAPER)
    text = compile_trend.table(doc)
    assert "| compiled, cold cache | 90.0 | 0.600 | 0.450 | 0.450 (× 0.900) | 10 |" in text and "steps 3-4" in text
    assert "allocator kept freed memory (rome.allocator)" in text


def test_compile_trend_rejects_bad_arguments(capsys: pytest.CaptureFixture) -> None:
    assert bench_main(["compile_trend", "--steps", "0", "--no-readme"]) == 2
    assert "--steps 0" in capsys.readouterr().err


def _speed_run(config: str, variant: str, secs: float, first: float = 1.0) -> dict:
    return {"config": config, "variant": variant, "seconds_per_iteration": secs, "first_call_s": first}


def test_speed_medians_ratios_targets_and_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from rome.training import compile as compile_choice

    runs = [_speed_run("gdas", "eager", s) for s in (2.0, 2.6, 2.4)] + \
           [_speed_run("gdas", "cl", s) for s in (1.9, 1.5, 1.6)] + \
           [_speed_run("train", "eager", 1.0), _speed_run("train", "cl", 0.7),
            _speed_run("train", "compile", 0.55, 137.0), _speed_run("train", "compile_cl", 0.5, 85.0)]
    rows = speed.summarise(runs)
    by = {(r["config"], r["variant"]): r for r in rows}
    assert by[("gdas", "eager")]["seconds_per_iteration"] == 2.4 and by[("gdas", "cl")]["seconds_per_iteration"] == 1.6
    assert by[("gdas", "cl")]["ratio_vs_eager"] == round(1.6 / 2.4, 3)
    targets = {(t["config"], t["setting"]): t for t in speed.check_targets(rows, "cpu")}
    assert targets[("gdas", "default")]["met"] is True  # 0.667 <= 0.7
    # the retraining's default for a run long enough to compile: compile + channels_last where compiling is faster
    # at all (COMPILED_RATIO < 1: this CPU, measured with rome.allocator; CUDA), else channels_last eager
    assert targets[("train", "default")]["variant"] == "compile_cl" and targets[("train", "default")]["met"] is True
    assert set(targets) == {("gdas", "default"), ("train", "default")}  # rome:1 not measured here
    cuda = {(t["config"], t["setting"]): t for t in speed.check_targets(rows, "cuda")}
    assert cuda[("train", "default")]["variant"] == "compile_cl" and cuda[("train", "default")]["met"] is True
    monkeypatch.setitem(compile_choice.COMPILED_RATIO, "cpu", 1.04)  # a device where compiling never pays
    eager_default = {t["config"]: t for t in speed.check_targets(rows, "cpu")}["train"]
    assert eager_default["variant"] == "cl" and eager_default["met"] is False  # 0.7 > 0.6
    doc = report.result_document("speed", "python -m benchmarks speed", {
        "device": "cpu", "rows": rows, "runs": runs, "targets": speed.check_targets(rows, "cpu"), "wall_seconds": 60,
        "settings": {"batch_size": 64, "layers": 8, "init_channels": 16, "resolution": 32, "threads": 2, "iters": 3,
                     "repeats": 3, "compile": True, "bf16": False}}, speed.PAPER,
        load_average_before=[1, 1, 1], load_average_after=[2, 2, 2])
    text = speed.table(doc)
    assert by[("gdas", "cl")]["min_seconds"] == 1.5 and by[("gdas", "cl")]["min_ratio_vs_eager"] == 0.75
    assert "0.500 (× 0.500); min 0.500 (× 0.500), first call 85 s" in text and "| gdas | default (channels_last) | 0.667 | ≤ 0.7 | met |" in text
    slow = speed.summarise([*runs, _speed_run("train", "compile_cl", 0.9)])
    assert [t["met"] for t in speed.check_targets(slow, "cuda") if t["config"] == "train"] == [False]  # median 0.7 > 0.6
    assert "| train | default (channels_last) | 0.700 | ≤ 0.6 | missed |" in text
    assert "{" not in text and "after 2 untimed ones (compiled: 10 for a search, 18 for the retraining)" in text


def test_speed_variants_and_bad_configs(capsys: pytest.CaptureFixture) -> None:
    # the search: its op modules compiled (with channels_last); bf16 measured on the CPU too (autocast around the step)
    assert speed.variants_for("gdas", True, True) == ["eager", "cl", "compile_cl", "bf16_cl"]
    assert speed.variants_for("train", True, True) == ["eager", "cl", "compile", "compile_cl", "bf16_cl"]
    assert speed.variants_for("gdas", False, True) == ["eager", "cl", "bf16_cl"]
    assert speed.variants_for("rome:1", False, False) == ["eager", "cl"]
    assert bench_main(["speed", "--configs", "rome:1,foo", "--no-readme"]) == 2
    assert "unknown ['foo']" in capsys.readouterr().err


# ----------------------------------------------------------------------------- pipeline benchmarks


def _synthetic_nb201_table(path: Path) -> Path:
    """Every NB201 cell with a made-up accuracy: 50 + 5 per conv edge + a small index-dependent part."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "arch", "cifar10_valid", "cifar10_test"])
        for i, ops in enumerate(itertools.product(list(NB201_OPS), repeat=6)):
            arch = f"|{ops[0]}~0|+|{ops[1]}~0|{ops[2]}~1|+|{ops[3]}~0|{ops[4]}~1|{ops[5]}~2|"
            acc = 50 + 5 * sum("conv" in o for o in ops) + (i % 7) / 10
            w.writerow([i, arch, round(acc - 1, 3), round(acc, 3)])
    return path


def _run_stages(params: dict, stages: tuple[str, ...]) -> None:
    modules = {"search": search, "derive": derive, "train": train, "evaluate": evaluate}
    for run in aggregate.sweep_runs(params):
        for stage in stages:
            modules[stage].run(run, stage_dir(run, stage), None)


@pytest.fixture(scope="module")
def nb201_sweep(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A smoke-sized NB201 sweep (2 algorithms x 2 seeds) through every stage, in-process."""
    root = tmp_path_factory.mktemp("nb201bench")
    table = _synthetic_nb201_table(root / "table.csv")
    params = smoke(root / "results", "search.space=nb201", "search.layers=1", "search.k_samples=2",
                   f"evaluate.benchmark_table={table}", "sweep.spaces=[nb201]", "sweep.algorithms=[rome, random]",
                   "sweep.seeds=[0, 1]", "train.auxiliary_weight=0", "train.layers=1",
                   "search.indicators.hessian_every=1", "search.indicators.hessian_iters=3",
                   "search.early_stop.max_param_free=1", "search.early_stop.start_epoch=1")
    prepare.run(params, stage_dir(params, "prepare"))
    _run_stages(params, ("search", "derive", "train", "evaluate"))
    aggregate.run(params, stage_dir(params, "aggregate"))
    return params


def test_arch_from_flat_and_op_counts() -> None:
    flat = [["nor_conv_3x3", 0], ["skip_connect", 0], ["none", 1], ["avg_pool_3x3", 0], ["skip_connect", 1],
            ["nor_conv_1x1", 2]]
    arch = nb201.arch_from_flat(flat)
    assert arch == "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_1x1~2|"
    assert nb201.op_counts(arch) == {"skip": 2, "none": 1, "pool": 1, "param_free": 4, "edges": 6}
    with pytest.raises(RomeError, match="triangular"):
        nb201.arch_from_flat(flat[:4])


def test_nb201_collect_reads_the_pipeline(nb201_sweep: dict) -> None:
    figures = nb201.collect(nb201_sweep)
    assert set(figures["algorithms"]) == {"rome", "random"}
    assert len(figures["runs"]) == 4
    table = nb201.Table(nb201_sweep["evaluate"]["benchmark_table"], "cifar10")
    for r in figures["runs"]:
        assert r["test"] == table.test(r["arch"])  # the evaluate stage's lookup is the table's value
        assert len(r["curve_test"]) == nb201_sweep["search"]["epochs"]
        assert r["curve_test"][-1] == r["test"]  # the last epoch's cell is the derived cell
        assert r["ops"]["edges"] == 6
        assert len(r["curve_param_free"]) == len(r["curve_test"]) and r["curve_param_free"][-1] == r["ops"]["param_free"]
        for criterion, stop in r["early_stop"].items():  # each rule's kept cell, looked up like the final one
            if stop is not None:
                assert stop["test"] == r["curve_test"][stop["chosen_epoch"] - 1]
        assert (r["algorithm"] == "random") == all(v is None for v in r["eigenvalue"])
    assert any(stop for r in figures["runs"] for stop in r["early_stop"].values())
    rome = figures["algorithms"]["rome"]
    tests = [r["test"] for r in figures["runs"] if r["algorithm"] == "rome"]
    assert rome["n_seeds"] == 2 and rome["test_mean"] == pytest.approx(sum(tests) / 2, abs=1e-3)
    all_skip = [i for i, ops in enumerate(itertools.product(list(NB201_OPS), repeat=6)) if set(ops) == {"skip_connect"}]
    assert figures["table"]["n_archs"] == 5 ** 6 and figures["table"]["all_skip_test"] == 50.0 + (all_skip[0] % 7) / 10


def test_nb201_detects_a_stale_aggregate(nb201_sweep: dict, tmp_path: Path) -> None:
    figures = nb201.collect(nb201_sweep)
    agg = json.loads((stage_dir(nb201_sweep, "aggregate") / "metrics.json").read_text())
    agg["mnist5k/nb201/rome"]["nb201_cifar10_test_mean"] += 1.0
    with pytest.raises(RomeError, match="rerun the aggregate"):
        nb201.check_against_aggregate(figures["algorithms"], agg, nb201_sweep)


def test_nb201_table_and_plot(nb201_sweep: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures = nb201.collect(nb201_sweep)
    figures["pipeline"] = {"command": "snakemake ...", "wall_seconds": 600.0, "load_average_before": [1.0],
                           "load_average_after": [2.0]}
    figures["budget_minutes"] = 45.0
    doc = report.result_document("nb201", "python -m benchmarks nb201", figures, nb201.PAPER)
    text = nb201.table_markdown(doc)
    assert "| rome | 2 |" in text and "| random | 2 |" in text and "93.61 ± 0.09" not in text.split("| random")[1]
    assert "10.0 min wall (budget 45 min: within)" in text
    assert "Early stopping applied to each full history" in text and "| rome | param_free |" in text
    png = nb201.plot(doc, tmp_path / "nb201.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the collapse indicators get their panels: parameter-free ops per epoch, and the eigenvalue where a run has one
    panels: list = []
    monkeypatch.setattr(nb201.plots, "curves", lambda ps, path, **kw: panels.extend(ps) or path)
    nb201.plot(doc, tmp_path / "n.png")
    old = {**doc, "figures": {**figures, "runs": [{k: v for k, v in r.items() if k not in ("curve_param_free", "eigenvalue")}
                                                  for r in figures["runs"]]}}
    nb201.plot(old, tmp_path / "old.png")  # a result from before issue 21: the accuracy panel alone
    assert [p.ylabel.split(" (")[0] for p in panels] == ["cifar10 test %", "parameter-free ops", "eigenvalue",
                                                         "cifar10 test %"]
    assert panels[1].ylabel == "parameter-free ops (of 6)"
    assert set(panels[2].series) == {"rome"}  # random has no eigenvalue


def test_run_benchmark_no_run_writes_result(nb201_sweep: dict, tmp_path: Path) -> None:
    import yaml

    config = tmp_path / "nb201.yaml"
    config.write_text(yaml.safe_dump({k: v for k, v in nb201_sweep.items()}))
    args = argparse.Namespace(scale="cpu", config=config, cores=1, threads_per_job=1, reuse=True, no_run=True,
                              out=tmp_path / "out.json", no_readme=True)
    out = nb201.main(args, ["nb201", "--no-run"])
    doc = report.load_result(out)
    assert doc["benchmark"] == "nb201" and doc["figures"]["pipeline"] is None
    assert doc["figures"]["algorithms"]["random"]["n_seeds"] == 2


def test_work_root_must_be_under_benchmarks_work(tmp_path: Path) -> None:
    with pytest.raises(RomeError, match="must lie under"):
        pipeline.work_root({"results_dir": str(tmp_path / "results")})
    inside = pipeline.work_root({"results_dir": "benchmarks/.work/x/results"})
    assert inside == report.BENCH_DIR / ".work" / "x"


def test_snakemake_command_passes_configfile_and_until() -> None:
    cmd = pipeline.snakemake_command(Path("benchmarks/configs/collapse.yaml"), 2, until="derive")
    assert cmd[1:5] == ["--cores", "2", "--configfile", "benchmarks/configs/collapse.yaml"]
    assert cmd[-2:] == ["--until", "derive"]


def test_bench_configs_resolve_to_their_presets() -> None:
    for scale, config in nb201.CONFIGS.items():
        p = pipeline.resolved(config)
        assert p["preset"] == "nb201_bench" and p["search"]["space"] == "nb201" and p["evaluate"]["benchmark_table"]
        assert set(p["sweep"]["algorithms"]) == {"rome", "gdas", "darts", "pc_darts", "random"} and len(p["sweep"]["seeds"]) >= 3
        assert pipeline.work_root(p).parent == report.BENCH_DIR / ".work"
    for scale, config in collapse.CONFIGS.items():
        p = pipeline.resolved(config)
        assert p["preset"] == "collapse_bench" and p["sweep"]["spaces"] == ["s2", "s3"]
        assert set(p["sweep"]["algorithms"]) == {"darts", "pc_darts", "gdas", "rome"} and len(p["sweep"]["seeds"]) >= 3


@pytest.fixture(scope="module")
def collapse_sweep(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("collapsebench")
    params = smoke(root / "results", "search.space=s2", "sweep.spaces=[s2]", "sweep.algorithms=[gdas, rome]",
                   "sweep.seeds=[0]")
    prepare.run(params, stage_dir(params, "prepare"))
    _run_stages(params, ("search", "derive"))
    return params


def test_collapse_collect_table_and_plot(collapse_sweep: dict, tmp_path: Path) -> None:
    figures = collapse.collect(collapse_sweep)
    assert [(s["space"], s["algorithm"]) for s in figures["summary"]] == [("s2", "gdas"), ("s2", "rome")]
    for r in figures["runs"]:
        assert 0 <= r["param_free_normal"] <= 8 and len(r["curve"]) == collapse_sweep["search"]["epochs"]
        assert r["curve"][-1] == r["param_free_normal"]
        assert len(r["normal"]) == 8
    gdas = figures["summary"][0]
    assert gdas["paper"] == 6.0 and gdas["per_seed"] == [figures["runs"][0]["param_free_normal"]]
    text = collapse_report(figures, tmp_path / "collapse.png")
    assert "| S2 | gdas | 1 |" in text and "| S2 | rome | 1 |" in text and "not rerun" in text


def collapse_report(figures: dict, png: Path) -> str:
    """The README table of ``figures`` (no pipeline run recorded); its plot is written to ``png`` and checked."""
    figures["pipeline"] = None
    doc = report.result_document("collapse", "python -m benchmarks collapse", figures, collapse.PAPER)
    assert collapse.plot(doc, png).read_bytes()[:4] == b"\x89PNG"
    return collapse.table_markdown(doc)


def test_pass_peaks_reads_one_peak_per_pass() -> None:
    """A pass that touches 256 MB more shows it in its own reading only (Linux: VmHWM reset per pass)."""
    import torch

    from benchmarks.pass_peaks import PassPeaks, reset_rss_hwm

    if not reset_rss_hwm():
        pytest.skip("this kernel does not let a process reset its peak RSS")

    class Toy(torch.nn.Module):
        def forward(self, big: bool) -> torch.Tensor:
            return torch.ones(64 * 2**20 if big else 1).sum()  # 256 MB of float32, freed on return

    model = Toy()
    peaks = PassPeaks(model, torch.device("cpu"))
    for big in (False, True, False):
        model(big)
    peaks.close()
    assert len(peaks.rss) == 3 and peaks.cuda_mb == []
    assert peaks.rss[1] > peaks.rss[0] + 200 and peaks.rss[1] > peaks.rss[2] + 200


def test_stream_table() -> None:
    from benchmarks import stream

    settings = {"steps": 5, "batch": 64, "workers": 2, "resize": 64, "storages": ["stream"]}
    one = {"peak_rss_mib": 400.0, "worker_peak_rss_mib": 300.0, "imports_rss_mib": 350.0, "seconds": 10.0}
    rows = [{"storage": "stream", "train_images": n, "prepare": one, "train": one, "search": one} for n in (50_000, 5_000)]
    doc = report.result_document("stream", "python -m benchmarks stream", {"settings": settings, "rows": rows},
                                 stream.PAPER)
    text = stream.table(doc)
    assert "| stream | 50000 | 10.00 | 400.00 | 400.00 | 50.00 | 300.00 | 400.00 | 50.00 | 300.00 |" in text
    assert "2 DataLoader workers" in text and "child" in text and "commit" in text


@pytest.fixture(scope="module")
def trajectory_sweep(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A smoke sweep with the eigenvalue every epoch and an early-stopping rule that can fire in 4 epochs."""
    root = tmp_path_factory.mktemp("trajectories")
    params = smoke(root / "results", "search.space=s2", "sweep.spaces=[s2]", "sweep.algorithms=[gdas, darts]",
                   "sweep.seeds=[0]", "search.epochs=4", "search.indicators.hessian_every=1",
                   "search.indicators.hessian_iters=5", "search.early_stop.window=1", "search.early_stop.delta=1",
                   "search.early_stop.ratio=1.0001", "search.early_stop.start_epoch=1",
                   "search.early_stop.max_param_free=1")
    prepare.run(params, stage_dir(params, "prepare"))
    _run_stages(params, ("search", "derive"))
    return params


def test_collapse_trajectories_early_stop_and_retraining(trajectory_sweep: dict, tmp_path: Path) -> None:
    """Eigenvalue curves, each rule's decision equal to what the stage would keep, retrained scores for each
    distinct kept cell, and the trajectory table and eigenvalue panels."""
    import yaml

    from benchmarks import early_stop
    from rome.search.early_stop import StopRule, decide

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"preset": "smoke", "results_dir": trajectory_sweep["results_dir"],  # as the sweep's
                                      "search": {"space": "s2"},
                                      "sweep": {"spaces": ["s2"], "algorithms": ["gdas", "darts"], "seeds": [0]}}))
    figures = collapse.collect(trajectory_sweep, retrain=True, config=config, cores=2)
    for r in figures["runs"]:
        history = pipeline.read_history({**trajectory_sweep, "search": {**trajectory_sweep["search"],
                                                                         "algorithm": r["algorithm"]}})
        assert r["eigenvalue"] == [h["hessian_eig"] for h in history] and all(v is not None for v in r["eigenvalue"])
        assert r["hessian_seconds"] > 0 and r["epoch_seconds"] > 0
        for criterion in early_stop.CRITERIA:
            rule = StopRule.from_search({**trajectory_sweep["search"]["early_stop"], "criterion": criterion},
                                        trajectory_sweep["search"]["indicators"])
            d = decide(rule, history, 4)
            stop = r["early_stop"][criterion]
            assert (stop is None) == (d is None)
            if stop:
                assert stop["genotype"] == history[d.chosen_epoch - 1]["genotype"]
        assert set(r["accuracy"]) == {"final", *early_stop.CRITERIA} and all(0 <= v <= 100 for v in r["accuracy"].values())
    fired = [(r, c) for r in figures["runs"] for c, s in r["early_stop"].items()
             if s and s["genotype"] != r["final_genotype"]]
    assert fired, "the rules above are meant to fire before the end in this sweep"
    for r in figures["runs"]:  # each distinct kept cell of a run was trained once, in its own folder
        cells = {json.dumps(r["final_genotype"])} | {json.dumps(s["genotype"]) for s in r["early_stop"].values() if s}
        folder = stage_dir({**trajectory_sweep, "search": {**trajectory_sweep["search"], "algorithm": r["algorithm"]}},
                           "search").parent / "retrain"
        assert len(list(folder.glob("*/evaluate/metrics.json"))) == len(cells)
    text = collapse_report(figures, tmp_path / "t.png")
    assert "Trajectories and early stopping" in text and "| eigenvalue |" in text and "param_free" in text


def _recorded_collapse(params: dict, path: Path, runs: list[dict]) -> Path:
    """A committed collapse result for ``params``' sweep: each run's final cell, an eigenvalue rule that never
    fired and a param_free rule's kept cell."""
    final = {"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1]] * 4, "reduce": [["max_pool_3x3", 0], ["skip_connect", 1]] * 4}
    kept = {"normal": [["skip_connect", 0], ["skip_connect", 1]] * 4, "reduce": final["reduce"]}
    rows = [{"space": r["search"]["space"], "algorithm": r["search"]["algorithm"], "seed": r["seed"],
             "param_free_normal": 0, "curve": [2, 0], "final_genotype": final, "normal": final["normal"],
             "search_seconds": 1.0, "eigenvalue": [None, None], "accuracy": {"final": 99.0},
             "early_stop": {"eigenvalue": None, "param_free": {"chosen_epoch": 1, "fired_epoch": 1, "criterion": "param_free",
                                           "param_free_normal": 8, "genotype": kept}}} for r in runs]
    figures = {"settings": collapse.search_settings(params), "runs": rows}
    return report.write_result(report.result_document("collapse", "python -m benchmarks collapse", figures,
                                                      collapse.PAPER), path)


def test_collapse_retrains_the_cells_of_a_recorded_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """--searches-from: the recorded rows' cells (final and kept) are retrained from the genotypes the result
    holds; its old accuracies are dropped; a result of other settings or another sweep is refused."""
    from benchmarks import early_stop

    params = smoke(tmp_path / "results", "search.space=s2", "sweep.spaces=[s2]", "sweep.algorithms=[gdas, rome]",
                   "sweep.seeds=[0]")
    runs = pipeline.runs(params)
    result = _recorded_collapse(params, tmp_path / "recorded.json", runs)
    trained: list[dict] = []

    def fake_rome(args: list[str], log: Path) -> None:
        if args[0] == "train":
            derive = Path(args[args.index("--input", args.index("--input") + 1) + 1].split("=", 1)[1])
            trained.append(json.loads((derive / "genotype.json").read_text())["genotype"])
        else:
            out = Path(args[args.index("--out") + 1])
            out.mkdir(parents=True, exist_ok=True)
            (out / "metrics.json").write_text(json.dumps({"top1": 10.0 * (len(trained) % 2 + 1)}))
    monkeypatch.setattr(early_stop, "_rome", fake_rome)
    figures = collapse.collect(params, retrain=True, config=Path("c.yaml"), cores=1, searches_from=result)
    assert len(trained) == 4  # per run: the final cell and the rule's kept cell, written from the result
    assert {json.dumps(g["normal"]) for g in trained} == {json.dumps([["sep_conv_3x3", 0], ["sep_conv_3x3", 1]] * 4),
                                                          json.dumps([["skip_connect", 0], ["skip_connect", 1]] * 4)}
    for r in figures["runs"]:
        assert set(r["accuracy"]) == {"final", *early_stop.CRITERIA} and r["accuracy"]["final"] != 99.0
        assert r["accuracy"]["eigenvalue"] == r["accuracy"]["final"]  # the eigenvalue rule never fired: the final cell
    assert figures["searches_from"]["result"] == str(result) and figures["summary"][0]["top1_mean"] is not None
    assert "only the retraining ran" in collapse_report(figures, tmp_path / "t.png")
    cost = figures["retrain_cost"]
    assert cost["cells_trained"] == 4 and cost["cells_reused"] == 0 and cost["wall_seconds"] is not None
    assert "Retraining: 4 cells trained in" in collapse_report(figures, tmp_path / "t.png")
    again = collapse.collect(params, retrain=True, config=Path("c.yaml"), cores=1, searches_from=result)
    assert len(trained) == 4  # every score reused: nothing trained, so no wall time stands for the retraining
    assert again["retrain_cost"]["cells_trained"] == 0 and again["retrain_cost"]["wall_seconds"] is None
    assert "Retraining: 0 cells trained, 4 reused" in collapse_report(again, tmp_path / "t.png")

    other = smoke(tmp_path / "results", "search.space=s2", "sweep.spaces=[s2]", "sweep.algorithms=[gdas, rome]",
                  "sweep.seeds=[0]", "search.epochs=3")
    with pytest.raises(RomeError, match=r"recorded.json: settings.epochs = 2, but the config resolves 3"):
        collapse.recorded_rows(other, pipeline.runs(other), result)
    wider = smoke(tmp_path / "results", "search.space=s2", "sweep.spaces=[s2]", "sweep.algorithms=[gdas, rome]",
                  "sweep.seeds=[0, 1]")
    with pytest.raises(RomeError, match=r"settings.seeds"):
        collapse.recorded_rows(wider, pipeline.runs(wider), result)
    doc = json.loads(result.read_text())
    doc["figures"]["runs"] = doc["figures"]["runs"][:1]
    (tmp_path / "short.json").write_text(json.dumps(doc))
    with pytest.raises(RomeError, match=r"short.json: no run for space s2, algorithm rome, seed 0"):
        collapse.recorded_rows(params, runs, tmp_path / "short.json")
    doc["benchmark"] = "nb201"
    (tmp_path / "nb.json").write_text(json.dumps(doc))
    with pytest.raises(RomeError, match=r"nb.json: benchmark = 'nb201', expected a 'collapse' result"):
        collapse.recorded_rows(params, runs, tmp_path / "nb.json")
    assert bench_main(["collapse", "--searches-from", str(result)]) == 2
    assert "only retrains a recorded result's cells; add --retrain" in capsys.readouterr().err


def test_reuse_keeps_outputs_a_params_path_change_would_rerun() -> None:
    fresh = pipeline.snakemake_command(Path("benchmarks/configs/collapse.yaml"), 2)
    kept = pipeline.snakemake_command(Path("benchmarks/configs/collapse.yaml"), 2, keep=True)
    assert "--rerun-triggers" not in fresh  # a fresh run clears the folder anyway: snakemake's defaults
    triggers = kept[kept.index("--rerun-triggers") + 1:]
    assert "params" not in triggers and {"mtime", "input"} <= set(triggers)


def test_retrained_score_is_reused_only_for_the_same_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rerun search may keep another cell in the same <kind> folder: its old score must not stand for it."""
    from benchmarks import early_stop

    calls: list[str] = []

    def fake_rome(args: list[str], log: Path) -> None:
        calls.append(args[0])
        if args[0] == "evaluate":
            out = Path(args[args.index("--out") + 1])
            out.mkdir(parents=True, exist_ok=True)
            (out / "metrics.json").write_text(json.dumps({"top1": 40.0 + len(calls)}))
    monkeypatch.setattr(early_stop, "_rome", fake_rome)
    monkeypatch.setattr(early_stop, "stage_dir", lambda run, stage: tmp_path / stage)
    run = {"data": {"dataset": "imagefolder", "subset": {"train": 10}}, "search": {"space": "s2", "algorithm": "gdas"},
           "seed": 0, "train": {"epochs": 6}}
    cell_a, cell_b = {"normal": [["skip_connect", 0]]}, {"normal": [["sep_conv_3x3", 1]]}
    folder = tmp_path / "retrain" / "final"
    first, trained = early_stop.retrain_one(Path("c.yaml"), run, tmp_path / "derive", folder, cell_a)
    assert calls == ["train", "evaluate"] and trained
    assert early_stop.retrain_one(Path("c.yaml"), run, tmp_path / "derive", folder, cell_a) == (first, False)
    assert calls == ["train", "evaluate"]  # same cell, same settings: the score is reused
    assert early_stop.retrain_one(Path("c.yaml"), run, tmp_path / "derive", folder, cell_b)[0] != first
    assert calls == ["train", "evaluate"] * 2  # another cell in the same folder: retrained
    longer = {**run, "train": {"epochs": 12}}
    early_stop.retrain_one(Path("c.yaml"), longer, tmp_path / "derive", folder, cell_b)
    assert calls == ["train", "evaluate"] * 3  # other retraining settings: retrained
