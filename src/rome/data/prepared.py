"""The prepared-data artifact: one safetensors file of uint8 images/labels per split + manifest.json."""

from __future__ import annotations

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

MANIFEST_SCHEMA_VERSION = 1
DATA_FILE = "data.safetensors"
MANIFEST_FILE = "manifest.json"


@dataclass
class PreparedData:
    """Read side of ``rome prepare``'s folder: lazily loads the tensors once."""

    path: Path
    manifest: dict[str, Any]

    @cached_property
    def _tensors(self) -> dict[str, torch.Tensor]:
        file = self.path / DATA_FILE
        verify_data_file(self.path, self.manifest)
        try:
            return load_file(str(file))
        except (SafetensorError, OSError) as exc:
            raise RomeError(f"{file}: cannot read prepared data ({exc}); rerun `rome prepare`") from None

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(images uint8 N,C,H,W, labels int64 N) of one split."""
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
        return (self.manifest.get("outputs_sha256") or {}).get(DATA_FILE)


_VERIFIED: set[tuple[str, int, int, str]] = set()


def data_file_problem(path: str | Path, manifest: dict[str, Any]) -> str | None:
    """Why ``data.safetensors`` is not the file ``rome prepare`` recorded (None when it is).

    The manifest records the file's sha256 (``outputs_sha256``); a file damaged or swapped after
    prepare would otherwise train and evaluate silently on other data. Hashed once per process
    per (file, size, mtime): a few milliseconds for MNIST, about a second per GB.
    """
    file = Path(path) / DATA_FILE
    expected = (manifest.get("outputs_sha256") or {}).get(DATA_FILE)
    if not isinstance(expected, str):
        return f"{Path(path) / MANIFEST_FILE}: no outputs_sha256.{DATA_FILE}; expected a manifest written by `rome prepare`"
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


def load_prepared(path: str | Path) -> PreparedData:
    """Open a prepared-data folder with one-line errors for a missing/corrupt/newer manifest."""
    path = Path(path)
    manifest_path = path / MANIFEST_FILE
    manifest = read_json(manifest_path, "prepared-data manifest")
    check_schema_version(manifest, MANIFEST_SCHEMA_VERSION, manifest_path, "prepared-data manifest")
    for key in ("classes", "shape", "normalization", "counts"):
        if key not in manifest:
            raise RomeError(f"{manifest_path}: missing field {key!r}; expected a manifest written by `rome prepare`")
    if not (path / DATA_FILE).is_file():
        raise RomeError(f"{path / DATA_FILE}: missing; rerun `rome prepare`")
    return PreparedData(path, manifest)
