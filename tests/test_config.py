"""params.yaml resolution and validation: presets, overrides, and the one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rome.config import load_params, load_preset, params_hash, preset_names, resolve, schema, validate
from rome.errors import RomeError

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_resolves(name: str) -> None:
    params = resolve({"preset": name})
    assert params["preset"] == name
    validate(params, "test")


def test_shipped_params_yaml_uses_default_and_is_valid() -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert raw["preset"] == "default"
    params = load_params(REPO / "params.yaml")
    assert params["search"]["algorithm"] in schema()["definitions"]["algorithm"]["enum"]


def test_default_preset_defines_every_schema_key() -> None:
    base = load_preset("default")
    for section, spec in schema()["properties"].items():
        if section == "preset":
            continue
        assert section in base, section
        if spec.get("type") == "object":
            assert set(spec["properties"]) == set(base[section]), section


def test_precedence_preset_then_file_then_set() -> None:
    smoke = load_preset("smoke")
    p = resolve({"preset": "smoke", "search": {"epochs": 9}}, ["search.layers=7", "preset=smoke"])
    assert p["search"]["epochs"] == 9          # file beats preset
    assert p["search"]["layers"] == 7          # --set beats file and preset
    assert p["search"]["batch_size"] == smoke["search"]["batch_size"]  # preset beats default
    assert p["search"]["a_lr"] == load_preset("default")["search"]["a_lr"]


def test_set_can_switch_preset() -> None:
    p = resolve({"preset": "default"}, ["preset=paper"])
    assert p["preset"] == "paper" and p["search"]["k_samples"] == 7 and p["search"]["layers"] == 8


@pytest.mark.parametrize(
    "override, message",
    [
        ("search.k_samples=0", "search.k_samples = 0: expected >= 1"),
        ("search.algorithm=enas", "search.algorithm = \"enas\": expected one of"),
        ("search.epochs=two", "search.epochs = \"two\": expected type"),
        ("search.bogus=1", "search.bogus: unknown key; expected one of"),
        ("bogus=1", "bogus: unknown key"),
        ("data.resize=4", "data.resize = 4: expected >= 8"),
        ("sweep.seeds=[]", "sweep.seeds = []: expected at least 1"),
        ("preset=huge", "preset = \"huge\": expected one of"),
        ("search.tau_min=20", "search.tau_min = 20: expected <= search.tau_max"),
    ],
)
def test_bad_values_give_one_line_errors(override: str, message: str) -> None:
    with pytest.raises(RomeError) as err:
        resolve({"preset": "smoke"}, [override])
    text = str(err.value)
    assert message in text and "\n" not in text


def test_bad_file_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "params.yaml"
    f.write_text("search:\n  k_samples: -3\n")
    with pytest.raises(RomeError, match=r"params.yaml: search.k_samples = -3: expected >= 1"):
        load_params(f)
    f.write_text("search: [1, 2\n")
    with pytest.raises(RomeError, match=r"params.yaml: not valid YAML"):
        load_params(f)
    with pytest.raises(RomeError, match="params file not found"):
        load_params(tmp_path / "missing.yaml")
    with pytest.raises(RomeError, match="expected KEY=VALUE"):
        resolve({}, ["search.k_samples"])


def test_cli_bad_param_exits_2_with_one_line(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "rome.cli", "prepare", "--params", str(REPO / "params.yaml"),
                          "--set", "search.k_samples=0", "--set", f"results_dir={tmp_path}"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "search.k_samples = 0" in lines[0]
    assert not any(tmp_path.iterdir())


def test_params_hash_is_order_independent() -> None:
    assert params_hash({"a": 1, "b": {"c": 2, "d": 3}}) == params_hash({"b": {"d": 3, "c": 2}, "a": 1})
    assert params_hash({"a": 1}) != params_hash({"a": 2})


def test_cli_help_lists_every_stage() -> None:
    out = subprocess.run([sys.executable, "-m", "rome.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for stage in ("prepare", "search", "derive", "train", "evaluate", "aggregate", "audit"):
        assert stage in out.stdout


def test_file_value_outside_the_sweep_is_refused(tmp_path: Path) -> None:
    """`dvc exp run -S search.algorithm=gdas` with sweep.algorithms [rome] would be silently ignored."""
    f = tmp_path / "params.yaml"
    f.write_text("preset: smoke\nsearch: {algorithm: gdas}\nsweep: {algorithms: [rome]}\n")
    with pytest.raises(RomeError, match=r"search.algorithm = 'gdas' is not in sweep.algorithms = \['rome'\].*sweep.algorithms=\[gdas\]"):
        load_params(f)
    f.write_text("preset: smoke\nsearch: {algorithm: gdas}\nsweep: {algorithms: [rome, gdas]}\n")
    assert load_params(f, ["search.algorithm=rome"])["search"]["algorithm"] == "rome"  # --set pins one item
    f.write_text("preset: smoke\nseed: 3\n")
    with pytest.raises(RomeError, match=r"seed = 3 is not in sweep.seeds = \[0\]"):
        load_params(f)
