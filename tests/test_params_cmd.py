"""`rome params`: every schema leaf documented; values with their origin (preset, file, --set)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO
from rome.config import effective_params, schema
from rome.stages.params import schema_leaves

ENV = {**os.environ, "PYTHONPATH": str(REPO / "src"), "WANDB_MODE": "disabled"}


def rome_params(*argv: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rome", "params", *argv], capture_output=True, text=True, env=ENV,
                          cwd=cwd, timeout=120)


def test_every_schema_leaf_has_a_description() -> None:
    sch = schema()
    leaves = schema_leaves(sch, sch["definitions"])
    assert len(leaves) > 80
    undocumented = sorted(k for k, leaf in leaves.items() if not str(leaf.get("description", "")).strip())
    assert not undocumented, f"undocumented params: {undocumented}"


def test_origins_follow_the_layers(tmp_path: Path) -> None:
    file = tmp_path / "params.yaml"
    file.write_text("preset: smoke\nsearch:\n  epochs: 5\n")
    eff = effective_params(file, ["search.k_samples=3"])
    assert eff["search.k_samples"] == (3, "--set")
    assert eff["search.epochs"] == (5, str(file))
    assert eff["data.resize"][1] == "preset smoke"
    assert eff["search.w_momentum"][1] == "preset default"
    assert eff["preset"] == ("smoke", str(file))


def test_params_command_prints_value_origin_type_and_readers(tmp_path: Path) -> None:
    res = rome_params("search.k_samples", "--preset", "smoke", "--set", "search.k_samples=4", "--json")
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert row["value"] == 4 and row["origin"] == "--set" and row["read_by"] == ["search"]
    assert row["allowed"] == "integer >= 1" and row["description"]
    text = rome_params("search").stdout
    assert "search.algorithm = " in text and "one of ['rome', 'gdas', 'darts', 'pc_darts', 'random']" in text
    bad = rome_params("search.nope")
    assert bad.returncode == 2 and "unknown key" in bad.stderr and "Traceback" not in bad.stderr
