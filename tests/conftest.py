"""Shared fixtures: smoke-sized params in a temp results dir, and one prepared mnist5k dataset."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("WANDB_SILENT", "true")
# tiny tensors: one thread is faster than two fighting (and subprocesses inherit it)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
import torch
from PIL import Image

from rome.config import resolve

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CIFAR_ARCHIVE = SHARED_DATA / "cifar10-jpg.tar.gz"
NB201_TABLE = SHARED_DATA / "nb201_12epoch.csv"


# untracked, not ignored, but never part of a copy: the table pipelines `rome table` generates here
# (committed, their stages would show in every `dvc status` of the copy) and the main dvc.lock
NOT_COPIED = ("tables/pipelines/", "dvc.lock")


def copy_working_tree(dest: Path) -> Path:
    """The working tree's tracked and untracked, not ignored files, copied to ``dest`` (no git)."""
    import shutil
    import subprocess

    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for rel in files:
        src = REPO / rel
        if src.is_file() and not rel.startswith(NOT_COPIED):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def smoke(results_dir: Path, *overrides: str) -> dict:
    """Resolved smoke-preset params writing under ``results_dir``."""
    return resolve({"preset": "smoke"}, [f"results_dir={results_dir}", *overrides], source="test")


@pytest.fixture
def smoke_params(tmp_path: Path) -> dict:
    return smoke(tmp_path / "results")


@pytest.fixture(scope="session")
def prepared_smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared mnist5k folder at smoke size (built once per session)."""
    from rome.paths import stage_dir
    from rome.stages import prepare

    root = tmp_path_factory.mktemp("prepared")
    params = smoke(root)
    return prepare.run(params, stage_dir(params, "prepare"))


def write_image_tree(root: Path, splits: dict[str, int], classes=("cat", "dog", "emu"), size=8, mode="RGB",
                     suffix: str = ".png") -> Path:
    """A tiny ``<split>/<class>/<image><suffix>`` tree with class-dependent colours (PNG, or JPEG by suffix)."""
    rng = np.random.default_rng(0)
    for split, per_class in splits.items():
        for c, cls in enumerate(classes):
            d = root / split / cls
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                shape = (size, size, 3) if mode == "RGB" else (size, size)
                arr = (rng.integers(0, 60, shape) + 80 * c).clip(0, 255).astype(np.uint8)
                Image.fromarray(arr, mode=mode).save(d / f"{i:04d}{suffix}")
    return root


def make_archive(src: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        for p in sorted(src.rglob("*")):
            tar.add(p, arcname=p.relative_to(src).as_posix(), recursive=False)
    return archive


def sigkill_once_written(proc, path: Path, timeout: float = 120.0) -> None:
    """SIGKILL ``proc`` as soon as ``path`` (a checkpoint) exists; fail if the run ended first."""
    import signal
    import time

    deadline = time.monotonic() + timeout
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"


def run_rome(ws: Path, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, list[str]]:
    """``rome <stage> --params ws/params.yaml ...`` in-process: (exit status, non-empty stderr lines,
    progress-bar carriage returns turned into line breaks)."""
    from rome import cli

    capsys.readouterr()
    rc = cli.main([args[0], "--params", str(ws / "params.yaml"), *args[1:]])
    err = capsys.readouterr().err.replace("\r", "\n")
    return rc, [line for line in err.splitlines() if line.strip()]


def one_line_error(rc: int, lines: list[str], stage: str, *fragments: str,
                   forbidden: tuple[str, ...] = ("Traceback",)) -> str:
    """The promise for bad input: exit 2, exactly one ``rome <stage>: error:`` line holding every
    fragment, and nothing ``forbidden`` (a traceback; a warning where one must not leak) around it."""
    assert rc == 2, lines
    errors = [line for line in lines if line.startswith(f"rome {stage}: error:")]
    assert len(errors) == 1, lines
    assert not any(word in line for line in lines for word in forbidden), lines
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]
