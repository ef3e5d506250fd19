"""The code dependencies dvc.yaml and Snakemake see are derived from imports; check the derivation
against what really runs: every rome module a real `rome <stage>` loads is in the static closure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import smoke
from rome.pipeline.codedeps import module_closure, stage_code_files, stage_modules

PROBE = """
import json, sys
from rome.cli import main
code = main(sys.argv[1:])
loaded = sorted(m for m, mod in sys.modules.items() if m.split('.')[0] == 'rome' and getattr(mod, '__file__', None))
print(json.dumps({"code": code, "loaded": loaded}))
"""


def loaded_modules(args: list[str]) -> list[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    res = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=300)
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    assert doc["code"] == 0, res.stderr[-2000:]
    return doc["loaded"]


@pytest.fixture(scope="module")
def params_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("codedeps")
    file = root / "params.yaml"
    file.write_text(f"preset: smoke\nresults_dir: {root / 'results'}\ndevice: cpu\n")
    return file


@pytest.mark.parametrize("stage", ["prepare", "search", "derive", "train", "evaluate", "aggregate"])
def test_static_closure_covers_every_module_a_run_loads(params_file: Path, stage: str) -> None:
    # stages run in order (module-scoped folder), so each finds its upstream artifact
    loaded = set(loaded_modules([stage, "--params", str(params_file)]))
    missing = loaded - stage_modules(stage)
    assert not missing, f"rome {stage} loaded modules its dvc.yaml/Snakemake deps do not list: {sorted(missing)}"


def test_closure_follows_relative_and_function_level_imports() -> None:
    closure = module_closure("rome.stages.derive")
    assert "rome.plots" in closure  # imported inside run() only when pictures are wanted
    assert {"rome", "rome.stages"} <= closure  # parent packages execute on import
    files = stage_code_files("search")
    assert "src/rome/schema/params.schema.yaml" in files  # data read by rome.config
    assert all(f.startswith("src/rome/") for f in files) and files == sorted(files)


def test_a_stage_does_not_depend_on_code_it_never_imports() -> None:
    assert "src/rome/stages/train.py" not in stage_code_files("search")
    assert not any(f.startswith("src/rome/search/") for f in stage_code_files("prepare"))
    assert "src/rome/pipeline/dvcfile.py" not in stage_code_files("search")
