"""The prepared-data artifact: one safetensors file of uint8 images/labels per split + manifest.json,
or (``data.storage: stream``, schema version 2) an index of the source's files + manifest.json."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from rome.artifacts import check_schema_version, read_json, sha256_file
from rome.data.splits import SPLITS
from rome.errors import RomeError

MANIFEST_SCHEMA_VERSION = 1  # the in-memory artifact (data.safetensors), unchanged
STREAM_SCHEMA_VERSION = 2  # the streamed artifact (index.csv): a reader must know it
DATA_FILE = "data.safetensors"
INDEX_FILE = "index.csv"
MANIFEST_FILE = "manifest.json"


def payload_file(manifest: dict[str, Any]) -> str:
    """The file whose sha256 is the prepared data's identity: the pixels, or the index."""
    return INDEX_FILE if manifest.get("storage") == "stream" else DATA_FILE


@dataclass
class PreparedData:
    """Read side of ``rome prepare``'s folder: lazily loads the tensors once."""

    path: Path
    manifest: dict[str, Any]
    cache_root: Path | None = None  # where a streamed archive is extracted (rome.paths.stream_cache_dir)

    @property
    def is_stream(self) -> bool:
        return self.manifest.get("storage") == "stream"

    @cached_property
    def _stream(self) -> dict[str, Any]:
        from rome.data.stream import read_index, source_folder

        verify_data_file(self.path, self.manifest)
        src = self.manifest["source"]
        splits = read_index(self.path / INDEX_FILE, Path(src["root"]), self.in_channels, self.resolution)
        root = Path(src["root"])
        if not root.exists():
            raise RomeError(f"{root}: the streamed source {self.path / MANIFEST_FILE} names is missing; expected the "
                            f"folder or archive `rome prepare` indexed")
        folder = source_folder(root, src["kind"], self.data_sha256 or "", splits, self.cache_root)
        for one in splits.values():
            one.root = folder
        return splits

    def stream_split(self, name: str) -> Any:
        """A streamed split (rome.data.stream.StreamSplit): paths, hashes, labels; read by workers."""
        if name not in SPLITS:
            raise RomeError(f"split {name!r}: unknown; expected one of {list(SPLITS)}")
        return self._stream[name]

    def labels(self, name: str) -> torch.Tensor:
        return self.stream_split(name).labels if self.is_stream else self.split(name)[1]

    def uint8_batches(self, name: str, batch_size: int, workers: int = 0,
                      pin_memory: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(uint8 N,C,H,W, labels) in stored order: slices of the tensors, or decoded by ``workers``."""
        if self.is_stream:
            from rome.data.stream import StreamImages, in_order

            return in_order(StreamImages(self.stream_split(name)), batch_size, workers, pin_memory=pin_memory)
        images, labels = self.split(name)
        return ((images[i:i + batch_size], labels[i:i + batch_size]) for i in range(0, len(labels), batch_size))

    @cached_property
    def _tensors(self) -> dict[str, torch.Tensor]:
        file = self.path / DATA_FILE
        verify_data_file(self.path, self.manifest)
        try:
            return load_file(str(file))
        except (SafetensorError, OSError) as exc:
            raise RomeError(f"{file}: cannot read prepared data ({exc}); rerun `rome prepare`") from None

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(images uint8 N,C,H,W, labels int64 N) of one split (in-memory data only)."""
        if self.is_stream:
            raise RomeError(f"{self.path / MANIFEST_FILE}: storage = 'stream'; this reader needs in-memory data "
                            f"(prepare with data.storage: memory)")
        if name not in SPLITS:
            raise RomeError(f"split {name!r}: unknown; expected one of {list(SPLITS)}")
        t = self._tensors
        return t[f"{name}/images"], t[f"{name}/labels"]

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    @property
    def num_classes(self) -> int:
        return len(self.manifest["classes"])

    @property
    def in_channels(self) -> int:
        return int(self.manifest["shape"]["channels"])

    @property
    def resolution(self) -> int:
        return int(self.manifest["shape"]["height"])

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(self.manifest["normalization"]["mean"])

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(self.manifest["normalization"]["std"])

    @cached_property
    def manifest_sha256(self) -> str:
        return sha256_file(self.path / MANIFEST_FILE)

    @property
    def data_sha256(self) -> str | None:
        """The data's identity in provenance: the content hash of the pixels and labels that
        ``rome prepare`` recorded (not the manifest's hash: same data, same identity)."""
        return (self.manifest.get("outputs_sha256") or {}).get(payload_file(self.manifest))


_VERIFIED: set[tuple[str, int, int, str]] = set()


def data_file_problem(path: str | Path, manifest: dict[str, Any]) -> str | None:
    """Why ``data.safetensors`` (or a streamed set's ``index.csv``) is not the file ``rome prepare``
    recorded (None when it is).

    The manifest records the file's sha256 (``outputs_sha256``); a file damaged or swapped after
    prepare would otherwise train and evaluate silently on other data. Hashed once per process
    per (file, size, mtime): a few milliseconds for MNIST, about a second per GB.
    """
    name = payload_file(manifest)
    file = Path(path) / name
    expected = (manifest.get("outputs_sha256") or {}).get(name)
    if not isinstance(expected, str):
        return f"{Path(path) / MANIFEST_FILE}: no outputs_sha256.{name}; expected a manifest written by `rome prepare`"
    try:
        st = file.stat()
    except OSError:
        return f"{file}: missing"
    key = (str(file.resolve()), st.st_size, st.st_mtime_ns, expected)
    if key in _VERIFIED:
        return None
    actual = sha256_file(file)
    if actual != expected:
        return (f"{file}: sha256 {actual[:16]}... does not match the {expected[:16]}... its manifest records; "
                f"the file was changed or damaged after `rome prepare`")
    _VERIFIED.add(key)
    return None


def prepared_folder_problem(path: str | Path) -> str | None:
    """For ``rome audit``: what is wrong with a prepared folder's manifest or data file, if anything."""
    try:
        manifest = read_json(Path(path) / MANIFEST_FILE, "prepared-data manifest")
    except RomeError as exc:
        return str(exc)
    return data_file_problem(path, manifest)


def verify_data_file(path: str | Path, manifest: dict[str, Any]) -> None:
    """Refuse (one line) prepared data whose file is not the one its manifest records."""
    problem = data_file_problem(path, manifest)
    if problem is not None:
        raise RomeError(f"{problem}; rerun `rome prepare`")


def load_prepared(path: str | Path, cache_root: Path | None = None) -> PreparedData:
    """Open a prepared-data folder with one-line errors for a missing/corrupt/newer manifest.
    ``cache_root``: where a streamed archive's images are extracted (rome.paths.stream_cache_dir)."""
    path = Path(path)
    manifest_path = path / MANIFEST_FILE
    manifest = read_json(manifest_path, "prepared-data manifest")
    supported = STREAM_SCHEMA_VERSION if manifest.get("storage") == "stream" else MANIFEST_SCHEMA_VERSION
    check_schema_version(manifest, supported, manifest_path, "prepared-data manifest")
    for key in ("classes", "shape", "normalization", "counts"):
        if key not in manifest:
            raise RomeError(f"{manifest_path}: missing field {key!r}; expected a manifest written by `rome prepare`")
    if not (path / payload_file(manifest)).is_file():
        raise RomeError(f"{path / payload_file(manifest)}: missing; rerun `rome prepare`")
    return PreparedData(path, manifest, cache_root)
