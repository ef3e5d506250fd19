"""rome evaluate: metrics keys and values, NAS-Bench-201 lookup, and one-line errors on bad input."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from rome.cli import main
from rome.errors import RomeError
from rome.paths import stage_dir
from rome.stages import evaluate, train
from rome.training.nb201_table import lookup
from test_train import NB201_ARCH, params_for

HEADER = "index,arch,cifar10_valid,cifar10_test,cifar100_valid,cifar100_test"


def write_table(path: Path, header: str = HEADER, arch: str = NB201_ARCH) -> Path:
    other = NB201_ARCH.replace("nor_conv_3x3~0|+", "avg_pool_3x3~0|+", 1)
    path.write_text(f"{header}\n7,{other},11.0,12.0,13.0,14.0\n42,{arch},81.5,83.25,55.0,56.5\n")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, prepared_smoke) -> dict:
    """One smoke retrain of the DARTS-V2 cell shared by the evaluate tests (they only read it)."""
    params = params_for(tmp_path_factory.mktemp("eval"), prepared_smoke, "train.epochs=1")
    train.run(params, stage_dir(params, "train"), argparse.Namespace(fresh=False))
    return params


def run_eval(params: dict, *overrides: str) -> Path:
    from rome.config import deep_merge

    for text in overrides:
        key, value = text.split("=", 1)
        params = deep_merge(params, {"evaluate": {key: json.loads(value)}})
    return evaluate.run(params, stage_dir(params, "evaluate"))


def test_evaluate_writes_sane_metrics(trained):
    out = run_eval(trained)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"top1", "top5", "params_m", "flops_m"}
    assert 0 <= metrics["top1"] <= metrics["top5"] <= 100
    assert metrics["params_m"] > 0 and metrics["flops_m"] > 0
    train_metrics = json.loads((stage_dir(trained, "train") / "metrics.json").read_text())
    assert metrics["top1"] == pytest.approx(train_metrics["top1"])  # same weights, same test split
    report = json.loads((out / "evaluate.json").read_text())
    assert report["schema_version"] == 1 and report["metrics"] == metrics
    assert report["provenance"]["stage"] == "evaluate" and report["provenance"]["data_sha256"]
    # latency and the machine are measured, not computed: the run record in state/ holds them
    from rome.paths import run_record_path

    record = json.loads(run_record_path(trained, "evaluate").read_text())
    assert record["environment"]["torch"] == torch.__version__ and record["latency"]["latency_ms"] > 0
    assert record["latency"]["batch_size"] == 64
    assert record["latency"]["repeats"] == trained["evaluate"]["latency_batches"]
    assert "latency" not in report and "environment" not in report
    assert report["benchmark"] is None


def test_params_exclude_auxiliary_head(trained):
    """The exported network has no auxiliary head, so params_m is the deployable count."""
    doc = json.loads((stage_dir(trained, "train") / "model.json").read_text())
    state = load_file(str(stage_dir(trained, "train") / "model.safetensors"))
    out = run_eval(trained)
    n_params = sum(v.numel() for k, v in state.items() if "running_" not in k and "num_batches" not in k)
    assert json.loads((out / "metrics.json").read_text())["params_m"] == pytest.approx(n_params / 1e6)
    assert doc["kwargs"].get("auxiliary") is None


def test_nb201_lookup_through_the_stage(tmp_path, prepared_smoke):
    geno = tmp_path / "cell.txt"
    geno.write_text(NB201_ARCH)
    params = params_for(tmp_path, prepared_smoke, f"train.genotype={geno}", "train.epochs=1")
    train.run(params, stage_dir(params, "train"), argparse.Namespace(fresh=False))
    table = write_table(tmp_path / "nb201.csv")
    out = run_eval(params, f'benchmark_table="{table}"', 'benchmark_dataset="cifar100"')
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["nb201_cifar100_valid"] == 55.0 and metrics["nb201_cifar100_test"] == 56.5
    assert "nb201_index" not in metrics  # a row pointer, not a figure: evaluate.json keeps it
    report = json.loads((out / "evaluate.json").read_text())
    assert report["benchmark"]["nb201_index"] == 42
    assert report["benchmark"]["arch"] == NB201_ARCH and report["benchmark"]["dataset"] == "cifar100"


def test_table_ignored_for_darts_cells(trained, tmp_path, capfd):
    out = run_eval(trained, f'benchmark_table="{write_table(tmp_path / "t.csv")}"')
    assert not any(k.startswith("nb201") for k in json.loads((out / "metrics.json").read_text()))
    assert "not a NAS-Bench-201 cell" in capfd.readouterr().err


def test_lookup_on_the_shared_table_header():
    """The real table's layout (/work/shared/data/nb201_12epoch.csv) is what lookup expects."""
    from conftest import NB201_TABLE

    if not NB201_TABLE.is_file():
        pytest.skip("shared NB201 table not present")
    with open(NB201_TABLE) as fh:
        header, first = fh.readline().strip(), fh.readline().strip()
    arch = first.split(",")[1]
    found = lookup(NB201_TABLE, arch, "cifar10")
    assert header.startswith("index,arch,cifar10_valid,cifar10_test")
    assert found["nb201_index"] == int(first.split(",")[0])
    assert found["nb201_cifar10_test"] == float(first.split(",")[3])


# ----------------------------------------------------------------------------- bad input


def test_table_missing_columns(tmp_path):
    table = write_table(tmp_path / "t.csv", header="index,arch,cifar10_valid,cifar10_test,x,y")
    with pytest.raises(RomeError) as err:
        lookup(table, NB201_ARCH, "cifar100")
    msg = str(err.value)
    assert str(table) in msg and "'cifar100_valid'" in msg and "'cifar100_test'" in msg and "\n" not in msg


def test_table_missing_arch_column(tmp_path):
    table = write_table(tmp_path / "t.csv", header="index,cell,cifar10_valid,cifar10_test,a,b")
    with pytest.raises(RomeError, match=r"missing column\(s\) \['arch'\]"):
        lookup(table, NB201_ARCH, "cifar10")


def test_table_without_the_arch(tmp_path):
    table = write_table(tmp_path / "t.csv", arch=NB201_ARCH.replace("skip_connect~1", "none~1"))
    with pytest.raises(RomeError, match=r"t.csv: arch '\|nor_conv_3x3~0\|.*' not found in column 'arch'"):
        lookup(table, NB201_ARCH, "cifar10")


def test_table_not_found(tmp_path):
    with pytest.raises(RomeError, match="evaluate.benchmark_table = .*nope.csv': file not found"):
        lookup(tmp_path / "nope.csv", NB201_ARCH, "cifar10")


def test_weights_of_another_network(trained, tmp_path, prepared_smoke):
    """A model.safetensors that does not fit model.json's network: file + first mismatching key/shape."""
    params = params_for(tmp_path, prepared_smoke)
    src = stage_dir(trained, "train")
    dst = stage_dir(params, "train")
    dst.mkdir(parents=True)
    (dst / "model.json").write_text((src / "model.json").read_text())
    state = load_file(str(src / "model.safetensors"))
    key = sorted(state)[0]
    state[key] = torch.zeros(5, 5)
    save_file(state, str(dst / "model.safetensors"))
    with pytest.raises(RomeError) as err:
        run_eval(params)
    msg = str(err.value)
    assert str(dst / "model.safetensors") in msg and repr(key) in msg and "(5, 5)" in msg


def test_cli_bad_weights_is_one_line_exit_2(trained, tmp_path, prepared_smoke, capsys):
    """Through the CLI: exit 2 and a single stderr line naming the file."""
    params = params_for(tmp_path, prepared_smoke)
    dst = stage_dir(params, "train")
    dst.mkdir(parents=True)
    (dst / "model.json").write_text((stage_dir(trained, "train") / "model.json").read_text())
    (dst / "model.safetensors").write_bytes(b"garbage")
    params_file = tmp_path / "params.yaml"
    params_file.write_text(f"preset: smoke\nresults_dir: {params['results_dir']}\n")
    code = main(["evaluate", "--params", str(params_file)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("rome evaluate: error: ") and "model.safetensors" in err[0]


def test_missing_model_json(tmp_path, prepared_smoke):
    params = params_for(tmp_path, prepared_smoke)
    with pytest.raises(RomeError, match="model.json: model description not found"):
        run_eval(params)


def test_data_of_another_shape(trained, tmp_path, prepared_smoke):
    params = params_for(tmp_path, prepared_smoke)
    dst = stage_dir(params, "train")
    dst.mkdir(parents=True)
    doc = json.loads((stage_dir(trained, "train") / "model.json").read_text())
    doc["resolution"] = 32
    (dst / "model.json").write_text(json.dumps(doc))
    (dst / "model.safetensors").write_bytes((stage_dir(trained, "train") / "model.safetensors").read_bytes())
    with pytest.raises(RomeError, match="resolution = 32 but the prepared data .* has 8"):
        run_eval(params)
