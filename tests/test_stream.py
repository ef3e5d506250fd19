"""Streamed imagefolder data (data.storage: stream): prepare's index, search / train / evaluate through
DataLoader workers, the same numbers as the in-memory path, resume, and a changed source refused."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO, make_archive, smoke, write_image_tree
from rome.data.prepared import INDEX_FILE, MANIFEST_FILE, STREAM_SCHEMA_VERSION, load_prepared
from rome.errors import RomeError
from rome.paths import checkpoint_dir, stage_dir, stream_cache_dir
from rome.reproducibility import seed_everything
from rome.search.loop import SearchData, run_search
from rome.sections import SearchConfig
from rome.stages import prepare

ALL = "data.subset={search_train: null, search_val: null, train: null, test: null}"


def tree_and_archive(tmp: Path) -> tuple[Path, Path]:
    tree = write_image_tree(tmp / "tree", {"train": 16, "test": 4})
    return tree, make_archive(tree, tmp / "data.tar.gz")


def params_for(results: Path, root: Path, *extra: str) -> dict:
    return smoke(results, "data.dataset=imagefolder", f"data.root={root}", "data.resize=null", ALL,
                 "search.batch_size=8", "search.workers=2", "train.workers=2", "train.batch_size=8",
                 "evaluate.workers=2", *extra)


def prepared(params: dict):
    return load_prepared(prepare.run(params, stage_dir(params, "prepare")), stream_cache_dir(params))


@pytest.mark.parametrize("as_archive", [False, True])
def test_index_artifact_has_the_in_memory_splits(tmp_path: Path, as_archive: bool) -> None:
    tree, archive = tree_and_archive(tmp_path)
    root = archive if as_archive else tree
    mem = prepared(params_for(tmp_path / "m", root, "data.storage=memory"))
    stream = prepared(params_for(tmp_path / "s", root, "data.storage=stream"))
    m = stream.manifest
    assert m["schema_version"] == STREAM_SCHEMA_VERSION and m["storage"] == "stream"
    assert m["source"]["kind"] == ("archive" if as_archive else "folder")
    assert not (stream.path / "data.safetensors").exists() and (stream.path / INDEX_FILE).is_file()
    assert stream.data_sha256 == m["outputs_sha256"][INDEX_FILE]
    with open(stream.path / INDEX_FILE, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["split", "label", "path", "sha256"] and len(rows[0]["sha256"]) == 64
    assert len(rows) == sum(m["counts"][s]["total"] for s in m["counts"])
    for key in ("classes", "shape", "counts", "split_sources", "normalization"):
        if key != "normalization":
            assert m[key] == mem.manifest[key], key
    assert m["normalization"]["mean"] == mem.manifest["normalization"]["mean"]
    for split in ("search_train", "search_val", "train", "test"):  # same images, same order, same pixels
        images, labels = mem.split(split)
        streamed = list(stream.uint8_batches(split, 7, workers=2))
        assert torch.equal(torch.cat([x for x, _ in streamed]), images)
        assert torch.equal(torch.cat([y for _, y in streamed]), labels)


def test_auto_keeps_small_sets_in_memory_and_stream_needs_imagefolder(tmp_path: Path) -> None:
    tree, _ = tree_and_archive(tmp_path)
    auto = prepared(params_for(tmp_path / "a", tree))  # data.storage: auto, the default
    assert "storage" not in auto.manifest and (auto.path / "data.safetensors").is_file()
    with pytest.raises(RomeError, match="data.storage = 'stream': data.dataset = 'mnist5k'"):
        prepare.run(smoke(tmp_path / "b", "data.storage=stream"), tmp_path / "b" / "out")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rome.cli", *args], capture_output=True, text=True, cwd=REPO)


@pytest.mark.parametrize("fault", ["changed", "missing"])
def test_changed_or_missing_source_file_is_one_line(tmp_path: Path, fault: str) -> None:
    tree, _ = tree_and_archive(tmp_path)
    results = tmp_path / "r"
    sets = [f"results_dir={results}", "preset=smoke", "data.dataset=imagefolder", f"data.root={tree}",
            "data.resize=null", ALL, "data.storage=stream", "search.batch_size=8", "search.workers=2",
            "search.epochs=1", "search.steps_per_epoch=1"]
    args = [a for s in sets for a in ("--set", s)]
    assert run_cli("prepare", *args).returncode == 0
    victim = sorted((tree / "train" / "dog").glob("*.png"))[3]
    if fault == "changed":
        victim.write_bytes(victim.read_bytes() + b"\0")
    else:
        victim.unlink()
    out = run_cli("search", *args)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert not any(line.startswith("Traceback") for line in lines)
    assert lines[-1].startswith("rome search: error: ") and str(victim) in lines[-1]
    assert ("does not match" if fault == "changed" else "missing or unreadable") in lines[-1]
    assert "rerun it" in lines[-1] and "DataLoader" not in lines[-1]


def test_damaged_index_is_refused(tmp_path: Path) -> None:
    tree, _ = tree_and_archive(tmp_path)
    data = prepared(params_for(tmp_path / "r", tree, "data.storage=stream"))
    index = data.path / INDEX_FILE
    index.write_text(index.read_text().replace(",0,", ",1,", 1))
    with pytest.raises(RomeError, match=r"index.csv: sha256 .* does not match .* rerun `rome prepare`"):
        load_prepared(data.path).stream_split("train")


def test_newer_index_schema_is_refused(tmp_path: Path) -> None:
    tree, _ = tree_and_archive(tmp_path)
    data = prepared(params_for(tmp_path / "r", tree, "data.storage=stream"))
    doc = json.loads((data.path / MANIFEST_FILE).read_text())
    doc["schema_version"] = STREAM_SCHEMA_VERSION + 1
    (data.path / MANIFEST_FILE).write_text(json.dumps(doc))
    with pytest.raises(RomeError, match="schema_version"):
        load_prepared(data.path)


def search(params: dict, data: SearchData, ckpt: Path | None, **kw):
    seed_everything(params["seed"])
    return run_search(SearchConfig.from_params(params), params["seed"], params["data"]["dataset"], data, ckpt,
                      "cpu", progress=False, log=lambda _m: None, **kw)


def test_streamed_search_matches_memory_and_resumes(tmp_path: Path) -> None:
    """Same indices and crops as the in-memory search (so the same alpha, beta and losses), with 2
    workers; stopped after an epoch and resumed from its checkpoint = uninterrupted."""
    _, archive = tree_and_archive(tmp_path)
    mem = SearchData.from_prepared(prepared(params_for(tmp_path / "m", archive, "data.storage=memory")))
    params = params_for(tmp_path / "s", archive, "data.storage=stream")
    data = SearchData.from_prepared(prepared(params))
    assert data.train_images is None and data.in_channels == 3 and data.resolution == 8
    a = search(params, mem, None)
    b = search(params, data, None)
    ckpt = checkpoint_dir(params, "search")
    first = search(params, data, ckpt, max_epochs_this_run=1)
    assert not first.complete
    resumed = search(params, data, ckpt)
    for x in (b, resumed):
        assert [h["train_loss"] for h in x.history] == [h["train_loss"] for h in a.history]
        assert [h["val_acc"] for h in x.history] == [h["val_acc"] for h in a.history]
        for k, v in a.state.algorithm.arch.named_tensors().items():
            assert torch.equal(v, x.state.algorithm.arch.named_tensors()[k]), k
    assert resumed.state.train_batches.state_dict()["pos"] == a.state.train_batches.state_dict()["pos"]


def test_streamed_train_and_evaluate_match_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Retraining (2 steps, 2 workers) and evaluation on a streamed archive give the in-memory numbers
    (CIFAR-size: the same crop + flip on the same pixels, seeded per image); evaluation reads each
    test image once (its latency batch is the accuracy pass's first batch, not decoded again)."""
    from rome.data.stream import StreamImages
    from rome.stages import evaluate, train

    _, archive = tree_and_archive(tmp_path)
    reads: list[int] = []
    original = StreamImages.read
    monkeypatch.setattr(StreamImages, "read", lambda self, i: (reads.append(i), original(self, i))[1])
    out = {}
    for name in ("memory", "stream"):
        params = params_for(tmp_path / name, archive, f"data.storage={name}", "train.genotype=darts_v2",
                            "train.epochs=1", "evaluate.workers=0")  # decoded in this process: reads counted
        prepared(params)
        train.run(params, stage_dir(params, "train"))
        reads.clear()
        evaluate.run(params, stage_dir(params, "evaluate"))
        n_test = json.loads((stage_dir(params, "evaluate") / "evaluate.json").read_text())["test_images"]
        assert sorted(reads) == (list(range(n_test)) if name == "stream" else []), name
        out[name] = [json.loads((stage_dir(params, s) / "metrics.json").read_text()) for s in ("train", "evaluate")]
    assert out["memory"] == out["stream"]


def test_imagenet_size_train_transform_is_timms(tmp_path: Path) -> None:
    """Above 64 px a streamed retraining uses timm's RandomResizedCrop + flip + ColorJitter, seeded per image."""
    from rome.data.stream import StreamImages
    from rome.training.augment import stream_train_transform
    from rome.training.shards import SeededImages

    tree = write_image_tree(tmp_path / "big", {"train": 2}, size=80)
    data = prepared(params_for(tmp_path / "r", tree, "data.storage=stream", "data.subset={test: null}",
                               "data.test_fraction=0.5"))
    t = stream_train_transform(data.resolution, 3, True, data.mean, data.std)
    names = [type(step).__name__ for step in t.fn.transforms]
    assert not t.on_pixels and names[0] == "RandomResizedCropAndInterpolation" and "ColorJitter" in names
    ds = SeededImages(StreamImages(data.stream_split("train"), t))
    x, _ = ds[0]
    assert x.shape == (3, 80, 80) and torch.equal(ds[0][0], x)
    ds.epoch_seed = 1
    assert not torch.equal(ds[0][0], x)


def test_streamed_search_sigkilled_and_rerun_equals_uninterrupted(tmp_path: Path) -> None:
    """`rome search` on a streamed archive with 2 workers, SIGKILLed after a checkpoint and rerun, ends
    where an uninterrupted run ends (each run's own state/ folder: the rerun also rebuilds the cache)."""
    import os

    from safetensors.torch import load_file

    from conftest import sigkill_once_written
    from rome.search.checkpoint import CHECKPOINT_FILE

    _, archive = tree_and_archive(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    args, outs = {}, {}
    for name in ("killed", "reference"):
        sets = [f"results_dir={tmp_path / name / 'results'}", "preset=smoke", "data.dataset=imagefolder",
                f"data.root={archive}", "data.resize=null", ALL, "data.storage=stream", "search.batch_size=8",
                "search.workers=2", "search.epochs=4", "search.steps_per_epoch=3"]
        args[name] = [a for s in sets for a in ("--set", s)]
        assert run_cli("prepare", *args[name]).returncode == 0
    for cache in (tmp_path / "killed" / "state" / "stream_cache").iterdir():
        shutil.rmtree(cache)  # the killed run's consumer re-extracts the archive itself
    ckpt = tmp_path / "killed" / "state" / "imagefolder" / "darts" / "rome" / "seed0" / "search_ckpt" / CHECKPOINT_FILE

    def search_cli(name: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "rome.cli", "search", *args[name]], env=env, cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    sigkill_once_written(search_cli("killed"), ckpt)
    epoch_at_kill = torch.load(ckpt, weights_only=False)["epoch"]
    assert 1 <= epoch_at_kill < 4
    for name in ("killed", "reference"):
        out, err = search_cli(name).communicate(timeout=600)
        assert out.strip(), err
        outs[name] = Path(out.strip().splitlines()[-1])
    a, b = (load_file(str(outs[n] / "arch.safetensors")) for n in ("killed", "reference"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ha, hb = (json.loads((outs[n] / "history.json").read_text())["epochs"] for n in ("killed", "reference"))
    assert [h["val_loss"] for h in ha] == [h["val_loss"] for h in hb]
    assert [h["train_loss"] for h in ha] == [h["train_loss"] for h in hb]


def test_changed_archive_is_refused_when_its_cache_is_rebuilt(tmp_path: Path) -> None:
    tree, archive = tree_and_archive(tmp_path)
    params = params_for(tmp_path / "r", archive, "data.storage=stream")
    data = prepared(params)
    shutil.rmtree(stream_cache_dir(params))  # another machine: no extraction yet
    victim = sorted((tree / "test" / "emu").glob("*.png"))[0]
    victim.write_bytes(victim.read_bytes() + b"\0")
    make_archive(tree, archive)
    with pytest.raises(RomeError, match=r"test/emu/0000.png: sha256 does not match the index; the archive changed"):
        load_prepared(data.path, stream_cache_dir(params)).stream_split("test")
    assert not any(stream_cache_dir(params).glob("[!.]*"))  # nothing half-extracted is left for a later run


def test_every_image_reader_names_a_file_whose_pixels_do_not_decode() -> None:
    """A PNG cut short after its header: the header reader (prepare's scan) accepts it, and both pixel
    readers (the in-memory/search decode and timm's PIL path) refuse it in one line naming the file."""
    import io

    import numpy as np
    from PIL import Image

    from rome.data.sources import decode_image
    from rome.data.stream import _header, decode_pil

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, "PNG")
    cut = buf.getvalue()[: len(buf.getvalue()) // 2]
    assert _header(cut, "a/b.png") == ((32, 32), "RGB")
    for read in (lambda: decode_image(cut, "a/b.png"), lambda: decode_pil(cut, 3, "a/b.png")):
        with pytest.raises(RomeError, match=r"^a/b.png: image does not decode \(OSError\); expected a readable"):
            read()
    with pytest.raises(RomeError, match=r"^a/b.png: image does not decode \(UnidentifiedImageError\)"):
        _header(b"not an image", "a/b.png")
