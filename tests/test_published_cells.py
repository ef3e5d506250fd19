"""Published cells by name: shipped data files with their source, usable by train and timm."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import timm
import timm.data

import rome.models  # noqa: F401 - registers the rome_* networks
from conftest import REPO
from rome.config import load_params
from rome.errors import RomeError
from rome.genotype import Genotype, as_genotype, load_genotype, published_names, published_path
from rome.models import count_parameters
from rome.training import network

ENV = {**os.environ, "PYTHONPATH": str(REPO / "src"), "WANDB_MODE": "disabled"}


def test_the_four_cells_ship_with_their_source() -> None:
    assert set(published_names()) >= {"darts_v1", "darts_v2", "pc_darts", "gdas"}
    for name in published_names():
        doc = json.loads(published_path(name).read_text())
        assert doc["schema_version"] == 1 and doc["space"] == "darts"
        assert {"paper", "code", "published", "name"} <= set(doc["source"]), name
        assert isinstance(load_genotype(published_path(name)), Genotype)


@pytest.mark.parametrize(("name", "millions"), [("pc_darts", 3.63), ("gdas", 3.37), ("darts_v2", 3.35)])
def test_published_parameter_counts(name: str, millions: float) -> None:
    """20 cells, 36 channels on CIFAR-10: the papers' counts (PC-DARTS 3.63M, GDAS 3.36-3.4M, DARTS-V2 3.3M)."""
    model = timm.create_model("rome_darts_cifar", genotype=name, num_classes=10, layers=20, init_channels=36)
    assert count_parameters(model) / 1e6 == pytest.approx(millions, abs=0.01)


def test_names_resolve_for_train_and_unknown_names_fail_in_one_line(tmp_path) -> None:
    params = load_params(REPO / "params.yaml", ["preset=smoke", "train.genotype=pc_darts"])
    assert network.genotype_path(params) == published_path("pc_darts")
    with pytest.raises(RomeError, match="no_such_cell: genotype file not found"):
        as_genotype("no_such_cell")


def test_pretrained_cfg_follows_the_data() -> None:
    overlay = network.data_config(1, 16, [0.13], [0.31])
    model = timm.create_model("rome_darts_cifar", genotype="darts_v2", num_classes=10, in_chans=1, layers=3,
                              init_channels=4, pretrained_cfg_overlay=overlay)
    cfg = timm.data.resolve_model_data_config(model)
    assert cfg["input_size"] == (1, 16, 16) and cfg["mean"] == (0.13,) and cfg["std"] == (0.31,)
    assert model.pretrained_cfg["num_classes"] == 10


def test_rome_genotypes_lists_them() -> None:
    res = subprocess.run([sys.executable, "-m", "rome", "genotypes"], capture_output=True, text=True, env=ENV, cwd=REPO,
                         timeout=120)
    assert res.returncode == 0 and all(n in res.stdout for n in ("darts_v1", "darts_v2", "pc_darts", "gdas"))
