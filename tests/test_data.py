"""The data stage: sources, splits (sizes, disjointness, stratification, determinism), manifest, bad input."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import CIFAR_ARCHIVE, REPO, make_archive, smoke, write_image_tree
from rome.artifacts import sha256_file
from rome.data.loaders import ImageTensorDataset
from rome.data.prepared import load_prepared
from rome.data.sources import load_mnist5k
from rome.data.splits import make_splits, stratified_subset
from rome.errors import RomeError
from rome.paths import stage_dir
from rome.stages import prepare


def test_mnist5k_is_real_and_balanced() -> None:
    raw = load_mnist5k()
    assert raw.train_images.shape == (5000, 1, 28, 28) and raw.train_images.dtype == np.uint8
    assert np.bincount(raw.train_labels).tolist() == [500] * 10
    assert raw.test_images is None
    # real digits: mostly-black background with bright strokes
    assert 20 < raw.train_images.mean() < 50 and raw.train_images.max() == 255


def test_splits_sizes_disjoint_stratified_deterministic() -> None:
    labels = np.repeat(np.arange(10), 500)
    subset = {"search_train": None, "search_val": None, "train": None, "test": None}
    a = make_splits(labels, None, 0.2, subset, seed=3)
    b = make_splits(labels, None, 0.2, subset, seed=3)
    c = make_splits(labels, None, 0.2, subset, seed=4)
    for name in a:
        assert np.array_equal(a[name][1], b[name][1])
    assert not np.array_equal(a["search_train"][1], c["search_train"][1])
    st, sv, tr, te = (set(a[n][1].tolist()) for n in ("search_train", "search_val", "train", "test"))
    assert len(te) == 1000 and len(tr) == 4000 and len(st) == len(sv) == 2000
    assert not st & sv and st | sv == tr and not tr & te
    for name in a:
        counts = np.bincount(labels[a[name][1]], minlength=10)
        assert counts.min() == counts.max()


def test_stratified_subset_keeps_proportions() -> None:
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    idx = stratified_subset(labels, 20, np.random.default_rng(0))
    assert np.bincount(labels[idx]).tolist() == [12, 6, 2]
    assert len(np.unique(idx)) == 20


def test_prepare_mnist5k_smoke(prepared_smoke: Path) -> None:
    d = load_prepared(prepared_smoke)
    m = d.manifest
    assert m["schema_version"] == 1 and m["dataset"] == "mnist5k"
    assert {s: m["counts"][s]["total"] for s in ("search_train", "search_val", "train", "test")} == {
        "search_train": 64, "search_val": 64, "train": 128, "test": 64}
    images, labels = d.split("search_train")
    assert images.shape == (64, 1, 8, 8) and images.dtype == torch.uint8 and labels.dtype == torch.int64
    assert d.num_classes == 10 and d.in_channels == 1 and d.resolution == 8
    assert m["outputs_sha256"]["data.safetensors"] == sha256_file(prepared_smoke / "data.safetensors")
    from rome.data.sources import mnist5k_path

    # keyed by the path below the inputs' folder, not the absolute path (which differs per machine)
    assert m["source"]["inputs_sha256"] == {mnist5k_path().name: sha256_file(mnist5k_path())}
    assert m["provenance"]["params"]["data"]["resize"] == 8
    assert 0 < m["normalization"]["mean"][0] < 1
    ds = ImageTensorDataset(images, labels, d.mean, d.std)
    x, _ = ds[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32


def test_prepare_is_deterministic(tmp_path: Path, prepared_smoke: Path) -> None:
    params = smoke(tmp_path)
    out = prepare.run(params, stage_dir(params, "prepare"))
    assert sha256_file(out / "data.safetensors") == sha256_file(prepared_smoke / "data.safetensors")


@pytest.mark.parametrize("as_archive", [False, True])
def test_imagefolder_folder_and_archive(tmp_path: Path, as_archive: bool) -> None:
    tree = write_image_tree(tmp_path / "tree", {"train": 8, "test": 4})
    root = make_archive(tree, tmp_path / "data.tar.gz") if as_archive else tree
    params = smoke(tmp_path / "r", "data.dataset=imagefolder", f"data.root={root}", "data.resize=null",
                   "data.subset={search_train: null, search_val: null, train: null, test: null}")
    d = load_prepared(prepare.run(params, stage_dir(params, "prepare")))
    assert d.classes == ["cat", "dog", "emu"] and d.in_channels == 3 and d.resolution == 8
    assert d.manifest["counts"]["test"]["total"] == 12 and d.manifest["counts"]["train"]["total"] == 24
    assert d.manifest["split_sources"]["test"] == "test"
    # class-dependent colour survives: label 2 images are brighter than label 0
    imgs, labels = d.split("train")
    assert imgs[labels == 2].float().mean() > imgs[labels == 0].float().mean() + 100


@pytest.mark.skipif(not CIFAR_ARCHIVE.is_file(), reason="shared CIFAR-10 archive absent")
def test_shared_cifar10_archive(tmp_path: Path) -> None:
    params = smoke(tmp_path, "data.dataset=imagefolder", f"data.root={CIFAR_ARCHIVE}", "data.resize=null",
                   "data.subset={search_train: 100, search_val: 100, train: 200, test: 100}")
    d = load_prepared(prepare.run(params, stage_dir(params, "prepare")))
    assert d.classes[:3] == ["airplane", "automobile", "bird"] and d.resolution == 32 and d.in_channels == 3
    assert d.manifest["counts"]["test"]["per_class"]["truck"] == 10


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rome.cli", *args], capture_output=True, text=True, cwd=REPO)


@pytest.mark.parametrize(
    "make_root, expected",
    [
        (lambda t: t / "missing.tar.gz", "no such file or directory"),
        (lambda t: (t / "bad.tar.gz").write_bytes(b"not a tarball at all") and t / "bad.tar.gz", "not a readable tar archive"),
        (lambda t: write_image_tree(t / "flat", {"train": 2}) and _flatten(t / "flat"), "expected <split>/<class>/<image>"),
        (lambda t: write_image_tree(t / "notrain", {"test": 2}), "no 'train' folder found"),
        (lambda t: _corrupt_one(write_image_tree(t / "corrupt", {"train": 2})), "image does not decode"),
        (lambda t: _truncated_archive(t), "corrupt or truncated archive"),
    ],
)
def test_bad_imagefolder_inputs(tmp_path: Path, make_root, expected: str) -> None:
    root = make_root(tmp_path)
    results = tmp_path / "results"
    out = run_cli("prepare", "--set", "preset=smoke", "--set", "data.dataset=imagefolder",
                  "--set", f"data.root={root}", "--set", f"results_dir={results}")
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert expected in lines[-1] and lines[-1].startswith("rome prepare: error:")
    assert not any(line.startswith("Traceback") for line in lines)
    assert not (results / "imagefolder" / "prepare").exists()


def _flatten(root: Path) -> Path:
    for img in list(root.rglob("*.png")):
        img.rename(root / f"{img.parent.name}_{img.name}")
    return root


def _corrupt_one(root: Path) -> Path:
    victim = sorted(root.rglob("*.png"))[1]
    victim.write_bytes(b"\x89PNG garbage")
    return root


def _truncated_archive(tmp: Path) -> Path:
    tree = write_image_tree(tmp / "t", {"train": 20})
    arc = make_archive(tree, tmp / "full.tar.gz")
    cut = tmp / "cut.tar.gz"
    cut.write_bytes(arc.read_bytes()[: arc.stat().st_size // 2])
    return cut


def test_failed_prepare_keeps_previous_artifact(tmp_path: Path, prepared_smoke: Path) -> None:
    """A failing run never damages an existing artifact (temp folder + rename)."""
    params = smoke(tmp_path)
    out = prepare.run(params, stage_dir(params, "prepare"))
    before = sha256_file(out / "data.safetensors")
    bad = smoke(tmp_path, "data.dataset=imagefolder", f"data.root={tmp_path / 'nope'}")
    with pytest.raises(RomeError):
        prepare.run(bad, out)
    assert sha256_file(out / "data.safetensors") == before
    assert [p.name for p in out.parent.iterdir()] == ["prepare"]


def test_corrupt_manifest_is_a_clear_error(tmp_path: Path, prepared_smoke: Path) -> None:
    params = smoke(tmp_path)
    out = prepare.run(params, stage_dir(params, "prepare"))
    (out / "manifest.json").write_text("{ broken")
    with pytest.raises(RomeError, match="manifest.json: corrupt JSON"):
        load_prepared(out)
    m = json.loads((prepared_smoke / "manifest.json").read_text())
    m["schema_version"] = 99
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(RomeError, match="schema_version = 99: expected <= 1"):
        load_prepared(out)


def test_cli_prints_artifact_path_last(tmp_path: Path) -> None:
    out = run_cli("prepare", "--set", "preset=smoke", "--set", f"results_dir={tmp_path}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == str(tmp_path / "mnist5k" / "prepare")
    out2 = run_cli("prepare", "--set", "preset=smoke", "--out", str(tmp_path / "elsewhere"))
    assert out2.stdout.strip().splitlines()[-1] == str(tmp_path / "elsewhere")


def test_mnist_missing_file_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from rome.data import sources

    monkeypatch.setattr(sources, "mnist5k_path", lambda: tmp_path / "gone.csv.gz")
    with pytest.raises(RomeError, match="gone.csv.gz: mnist_5k.csv.gz not found"):
        sources.load_mnist5k()
    bad = tmp_path / "bad.csv.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write("1,2,3\n4,5,6\n")
    monkeypatch.setattr(sources, "mnist5k_path", lambda: bad)
    with pytest.raises(RomeError, match="expected rows of 784 pixels"):
        sources.load_mnist5k()


def test_stored_order_is_shuffled_not_class_sorted(prepared_smoke: Path) -> None:
    """mnist5k's rows are sorted by class: a capped in-order pass must still see every class."""
    d = load_prepared(prepared_smoke)
    for split in ("search_train", "search_val", "train", "test"):
        _, labels = d.split(split)
        first = labels[: len(labels) // 4]
        assert len(torch.unique(first)) >= 5, split
        assert not torch.equal(labels, torch.sort(labels).values), split
