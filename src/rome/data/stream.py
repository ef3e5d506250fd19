"""Streamed imagefolder data: an index instead of pixels, decoded by DataLoader workers.

``rome prepare`` with ``data.storage: stream`` (or ``auto`` above ``AUTO_STREAM_BYTES``) reads every
file once (sha256 and the image header, no decode), splits the labels exactly as the in-memory path
does, and writes ``index.csv`` (split, label, path, sha256 per image, in each split's stored order)
beside manifest.json; the manifest records the index's sha256, which is the prepared data's identity.

Readers (``StreamImages``) re-hash every file they read against the index, so a source changed after
prepare is refused in one line. Archives: gzip has no random access (a tarfile opened per worker
would decompress from the start for every image), so the members an index names are extracted once
into a cache folder keyed by the index's hash (``rome.paths.stream_cache_dir``), verified member by
member; prepare fills it on its one pass, a consumer on another machine rebuilds it.

An image becomes the in-memory path's pixels: decoded as prepare decodes it (grayscale kept when the
whole set is, else RGB), then squashed to the prepared resolution with ``rome.data.resize``; so the
search's crops, the CIFAR-size retraining transform and evaluation see bit-identical inputs either
way. Only ImageNet-size retraining (resolution > ``SMALL_RESOLUTION``) differs: timm's
``create_transform`` (RandomResizedCrop + flip + ColorJitter 0.4) on the decoded original.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from rome.artifacts import atomic_dir
from rome.data.loaders import worker_errors
from rome.data.resize import resize_uint8
from rome.data.sources import (DEFAULT_MAX_PIXELS, GRAY_MODES, decode_image, inside, iter_entries, open_image, split_and_class,
                               split_keys_and_classes)
from rome.errors import RomeError

logger = logging.getLogger(__name__)

INDEX_COLUMNS = ("split", "label", "path", "sha256")
# auto streams above this many decoded bytes (uint8, all splits): the in-memory path holds the whole
# prepared set in every consuming process's RAM and the search puts both halves on the device, so
# keep it to sets that fit either comfortably (CIFAR-10 at 32 px: 0.18 GB; ImageNet at 64 px: 15 GB)
AUTO_STREAM_BYTES = 4 * 2**30
# normalisation statistics from a class-stratified sample of the train split, decoded one at a time
STATS_SAMPLE = 10_000
# resolutions up to this one retrain with the CIFAR protocol (padded crop + flip), larger ones with
# timm's ImageNet transform (RandomResizedCrop + flip + ColorJitter)
SMALL_RESOLUTION = 64
COMPLETE = ".complete"


# ----------------------------------------------------------------------------- prepare side


@dataclass
class ScannedFolder:
    """One pass over an imagefolder: per source split (train / test) the images' paths, hashes and labels."""

    classes: list[str]
    paths: dict[str, list[str]]
    shas: dict[str, list[str]]
    labels: dict[str, np.ndarray]
    sizes: set[tuple[int, int]]
    modes: set[str]

    @property
    def channels(self) -> int:
        return 3 if self.modes - GRAY_MODES else 1

    def resolution(self, resize: int | None, root: Path) -> int:
        """``data.resize``, else the one native size (mixed sizes need data.resize, as in memory)."""
        if resize is not None:
            return resize
        if len(self.sizes) != 1:
            shown = [f"{h}x{w}" for h, w in sorted(self.sizes)[:3]]
            raise RomeError(f"{root}: mixes image sizes {shown}; expected one size, or set data.resize to resize them all")
        h, w = next(iter(self.sizes))
        if h != w:
            raise RomeError(f"{root}: images are {h}x{w}; expected square images, or set data.resize")
        return h


# after prepare, a streamed file is decoded only once its sha256 matches the index, that is, once it is
# the very file prepare checked against data.max_pixels: no second, lower limit (the shipped default)
# may refuse an image the user's data.max_pixels let through
INDEXED_MAX_PIXELS = sys.maxsize


def _header(data: bytes, where: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[tuple[int, int], str]:
    """(height, width) and PIL mode from the image header alone (no pixel decode)."""
    with open_image(data, where, max_pixels) as img:
        return (img.height, img.width), img.mode


def scan_imagefolder(root: Path, cache: Path | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> ScannedFolder:
    """Hash and read the header of every image, in the in-memory path's order; with ``cache`` (an
    archive's extraction folder, written by the caller atomically) also write each image there."""
    by_split: dict[str, dict[str, list[tuple[str, str]]]] = {}
    sizes: set[tuple[int, int]] = set()
    modes: set[str] = set()
    for rel, read, where in tqdm(iter_entries(root), desc=f"index {root.name}", unit="file", mininterval=2.0,
                                 leave=False):
        found = split_and_class(rel, where)
        if found is None:
            continue
        data = read()
        size, mode = _header(data, where, max_pixels)
        sizes.add(size)
        modes.add(mode)
        by_split.setdefault(found[0], {}).setdefault(found[1], []).append((rel.as_posix(), hashlib.sha256(data).hexdigest()))
        if cache is not None:
            target = inside(cache, rel, where)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    train_key, test_key, classes = split_keys_and_classes(root, by_split)
    out = ScannedFolder(classes, {}, {}, {}, sizes, modes)
    for source, key in (("train", train_key), ("test", test_key)):
        if key is None:
            continue
        rows = [(path, sha, idx) for idx, cls in enumerate(classes) for path, sha in by_split[key].get(cls, [])]
        out.paths[source] = [r[0] for r in rows]
        out.shas[source] = [r[1] for r in rows]
        out.labels[source] = np.asarray([r[2] for r in rows], dtype=np.int64)
    return out


def index_text(scan: ScannedFolder, index_map: dict[str, tuple[str, np.ndarray]]) -> str:
    """index.csv: one row per image of each split, in the split's stored order."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    for split, (source, idx) in index_map.items():
        paths, shas, labels = scan.paths[source], scan.shas[source], scan.labels[source]
        writer.writerows((split, int(labels[i]), paths[i], shas[i]) for i in idx)
    return buf.getvalue()


# ----------------------------------------------------------------------------- read side


@dataclass
class StreamSplit:
    """One split of an index: paths (bytes, utf-8), sha256 digests (N,32 uint8) and labels.

    numpy arrays, not Python lists: forked DataLoader workers then share them page for page
    (touching a list's objects would copy it into every worker)."""

    root: Path
    paths: np.ndarray
    shas: np.ndarray
    labels: torch.Tensor
    channels: int
    resolution: int
    index_file: Path

    def __len__(self) -> int:
        return len(self.labels)


def read_index(file: Path, root: Path, channels: int, resolution: int) -> dict[str, StreamSplit]:
    """index.csv -> a ``StreamSplit`` per split, files resolved under ``root``."""
    rows: dict[str, tuple[list[bytes], list[bytes], list[int]]] = {}
    try:
        with open(file, newline="") as fh:
            reader = csv.reader(fh)
            if tuple(next(reader, ())) != INDEX_COLUMNS:
                raise RomeError(f"{file}: header is not {','.join(INDEX_COLUMNS)}; expected an index written by `rome prepare`")
            for split, label, path, sha in reader:
                rel = PurePosixPath(path)
                if rel.is_absolute() or ".." in rel.parts or len(rel.parts) not in (3, 4):
                    raise RomeError(f"{file}: path {path!r} is not <split>/<class>/<image> inside the source; "
                                    "expected an index written by `rome prepare` (rerun it)")
                p, s, y = rows.setdefault(split, ([], [], []))
                p.append(path.encode())
                s.append(bytes.fromhex(sha))
                y.append(int(label))
    except (OSError, ValueError) as exc:
        raise RomeError(f"{file}: unreadable index ({type(exc).__name__}); rerun `rome prepare`") from None
    return {split: StreamSplit(root, np.array(p, dtype=bytes),
                               np.frombuffer(b"".join(s), dtype=np.uint8).reshape(-1, 32).copy(),
                               torch.tensor(y, dtype=torch.int64), channels, resolution, file)
            for split, (p, s, y) in rows.items()}


def source_folder(root: Path, kind: str, index_sha: str, split_rows: dict[str, StreamSplit],
                  cache_root: Path | None) -> Path:
    """Where a worker reads the files: the folder itself, or an archive's verified extraction."""
    if kind == "folder":
        return root
    if cache_root is None:
        raise RomeError(f"{root}: a streamed archive needs a cache folder to extract into; expected the stage's state/ folder")
    cache = cache_root / index_sha[:16]
    if (cache / COMPLETE).is_file():
        return cache
    from filelock import FileLock

    cache_root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_root / f".{cache.name}.lock")):  # torchrun's ranks: one extracts, the others wait
        if not (cache / COMPLETE).is_file():
            extract(root, split_rows, cache, index_sha)
    return cache


def extract(root: Path, split_rows: dict[str, StreamSplit], cache: Path, index_sha: str) -> None:
    """The archive members the index names, each checked against its sha256, into ``cache`` (atomically)."""
    wanted: dict[str, bytes] = {}
    for s in split_rows.values():
        wanted.update(zip((p.decode() for p in s.paths), (bytes(d) for d in s.shas)))
    logger.info(f"stream: extracting {len(wanted)} images of {root} into {cache} (once per index)")
    with atomic_dir(cache) as tmp:
        for rel, read, where in iter_entries(root):
            digest = wanted.pop(rel.as_posix(), None)
            if digest is None:
                continue
            data = read()
            if hashlib.sha256(data).digest() != digest:
                raise RomeError(f"{where}: sha256 does not match the index; the archive changed after `rome prepare` "
                                f"(rerun it)")
            target = inside(tmp, rel, where)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if wanted:
            raise RomeError(f"{root}: {len(wanted)} indexed image(s) missing, e.g. {next(iter(wanted))}; "
                            f"the archive changed after `rome prepare` (rerun it)")
        (tmp / COMPLETE).write_text(index_sha + "\n")


class StreamImages(Dataset):
    """Images of a ``StreamSplit``, read and verified per item.

    ``dataset[i]``: (uint8 C,H,W at the prepared resolution, label); ``dataset[(i, oy, ox, flip)]``:
    the same image cropped / flipped with those draws (the streamed search); with ``train`` set
    (rome.training.augment.stream_train_transform), retraining's (normalised float image, label)."""

    def __init__(self, split: StreamSplit, train: Any = None) -> None:
        self.split, self.train = split, train

    def __len__(self) -> int:
        return len(self.split)

    def read(self, i: int) -> tuple[bytes, Path]:
        """The file's bytes, refused unless they are the ones `rome prepare` indexed."""
        s = self.split
        file = s.root / s.paths[i].decode()
        try:
            data = file.read_bytes()
        except OSError:
            raise RomeError(f"{file}: missing or unreadable; expected the image {s.index_file} records "
                            f"(the source changed after `rome prepare`: rerun it)") from None
        digest = hashlib.sha256(data).digest()
        if digest != s.shas[i].tobytes():
            raise RomeError(f"{file}: sha256 {digest.hex()[:16]}... does not match the {s.shas[i].tobytes().hex()[:16]}... "
                            f"{s.index_file} records; the file changed after `rome prepare` (rerun it)")
        return data, file

    def pixels(self, i: int) -> torch.Tensor:
        """uint8 C,H,W exactly as the in-memory path stores image ``i``."""
        data, file = self.read(i)
        arr, _ = decode_image(data, str(file), INDEXED_MAX_PIXELS)
        if self.split.channels == 3 and arr.shape[0] == 1:
            arr = np.repeat(arr, 3, axis=0)
        return resize_uint8(arr[None], self.split.resolution)[0]

    def __getitem__(self, item: int | tuple[int, int, int, bool]) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(item, tuple):
            from rome.data.augmentation import apply_crop_flip, crop_padding

            i, oy, ox, flip = item
            img = apply_crop_flip(self.pixels(i)[None], torch.tensor([[oy, ox]]),
                                  None if flip is None else torch.tensor([flip]),
                                  crop_padding(self.split.resolution))[0]
            return img, self.split.labels[i]
        if self.train is not None and self.train.on_pixels:
            return self.train(self.pixels(item)), self.split.labels[item]
        if self.train is not None:
            data, file = self.read(item)
            return self.train(decode_pil(data, self.split.channels, str(file))), self.split.labels[item]
        return self.pixels(item), self.split.labels[item]


def decode_pil(data: bytes, channels: int, where: str) -> Image.Image:
    """The decoded image in the dataset's mode (RGB, or L for an all-grayscale set), for timm's transforms."""
    with open_image(data, where, INDEXED_MAX_PIXELS) as img:
        return img.convert("RGB" if channels == 3 else "L")


def in_order(dataset: StreamImages, batch_size: int, workers: int, max_batches: int | None = None,
             pin_memory: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """uint8 batches in stored order (validation, evaluation), decoded by ``workers`` processes."""
    n = len(dataset) if max_batches is None else min(len(dataset), max_batches * batch_size)
    loader = DataLoader(torch.utils.data.Subset(dataset, range(n)), batch_size=batch_size, shuffle=False,
                        num_workers=workers, pin_memory=pin_memory)
    return worker_errors(loader)
