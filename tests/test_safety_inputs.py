"""Issue 19, the input half: files rome did not write (archives, images, checkpoints, params files,
genotypes, JSON artifacts) are data, checked before use; each hostile one ends in ONE line naming the
file or key, exit 2, no traceback, nothing written outside rome's folders, nothing executed."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import REPO, one_line_error, run_rome as rome


def one_error(rc: int, lines: list[str], stage: str, *fragments: str) -> str:
    """One line and, here, no leaked warning either (PIL's bomb warning, torch's pickle warning)."""
    return one_line_error(rc, lines, stage, *fragments, forbidden=("Traceback", "Warning"))
from rome import cli
from rome.artifacts import read_json
from rome.config import load_yaml, resolve, validate
from rome.data.sources import check_member
from rome.errors import RomeError
from rome.genotype.files import genotype_from_document, load_genotype
from rome.paths import checkpoint_dir




@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"preset": "smoke", "results_dir": str(tmp_path / "results")}))
    return tmp_path


def png(size: int = 8, seed: int = 0) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (size, size, 3)).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A ~100-byte PNG whose header declares width x height pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def add(tar: tarfile.TarFile, name: str, data: bytes | None = None, **attrs) -> None:
    info = tarfile.TarInfo(name)
    for key, value in attrs.items():
        setattr(info, key, value)
    if data is None:
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def archive(path: Path, extra) -> Path:
    """A valid two-class <split>/<class>/<image> archive plus one ``extra`` member."""
    with tarfile.open(path, "w:gz") as tar:
        for split, n in (("train", 6), ("test", 2)):
            for c, cls in enumerate(("cat", "dog")):
                for i in range(n):
                    add(tar, f"{split}/{cls}/{i:03d}.png", png(8, 10 * c + i))
        extra(tar)
    return path


OUTSIDE = Path(f"/tmp/rome-test-outside-{uuid.uuid4().hex[:8]}")
HOSTILE = {
    # four parts like top/<split>/<class>/<image>: old main extracted it to the absolute path
    "absolute": lambda t: add(t, f"{OUTSIDE}/evil.png", png(8, 99)),
    "absolute-train": lambda t: add(t, "/train/cat/evil.png", png(8, 99)),  # old main: a training image
    "dotdot": lambda t: add(t, "train/cat/../../../escaped.png", png(8, 98)),
    "symlink": lambda t: add(t, "train/cat/link.png", type=tarfile.SYMTYPE, linkname="/etc/passwd"),
    "inner-symlink": lambda t: add(t, "train/cat/link.png", type=tarfile.SYMTYPE, linkname="000.png"),
    "hardlink": lambda t: add(t, "train/cat/hard.png", type=tarfile.LNKTYPE, linkname="train/cat/000.png"),
    "device": lambda t: add(t, "train/cat/dev.png", type=tarfile.CHRTYPE, devmajor=1, devminor=3),
    "fifo": lambda t: add(t, "train/cat/fifo.png", type=tarfile.FIFOTYPE),
    "too-deep": lambda t: add(t, "a/b/train/cat/deep.png", png(8, 97)),
}


@pytest.mark.parametrize("storage", ["stream", "memory"])
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_archive_member_is_refused_naming_it(ws: Path, capsys, kind: str, storage: str) -> None:
    tar = archive(ws / f"{kind}.tar.gz", HOSTILE[kind])
    with tarfile.open(tar) as t:
        member = t.getmembers()[-1].name
    rc, lines = rome(ws, capsys, "prepare", "--set", "data.dataset=imagefolder", "--set", f"data.root={tar}",
                     "--set", "data.resize=8", "--set", f"data.storage={storage}")
    one_error(rc, lines, "prepare", str(tar), repr(member), "refused")
    assert not OUTSIDE.exists()
    assert not (ws.parent / "escaped.png").exists() and not (ws / "escaped.png").exists()
    assert not (ws / "results" / "imagefolder" / "prepare").exists()
    written = [p for p in (ws / "state").rglob("*") if p.is_file()] if (ws / "state").exists() else []
    assert not any(p.name.endswith(("evil.png", "escaped.png", "link.png", "hard.png")) for p in written)


def test_clean_archive_still_streams(ws: Path, capsys) -> None:
    tar = archive(ws / "ok.tar.gz", lambda t: add(t, "train", type=tarfile.DIRTYPE))
    rc, lines = rome(ws, capsys, "prepare", "--set", "data.dataset=imagefolder", "--set", f"data.root={tar}",
                     "--set", "data.resize=8", "--set", "data.storage=stream")
    assert rc == 0, lines


# ----------------------------------------------------------------------------- checkpoints


def test_no_weights_only_false_in_src() -> None:
    found = subprocess.run(["grep", "-rn", "weights_only=False", str(REPO / "src")], capture_output=True, text=True)
    assert found.stdout == "", found.stdout


class Payload:
    """What a crafted checkpoint holds: unpickling it runs a command (creates the marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_checkpoint_is_never_unpickled(ws: Path, capsys, recwarn) -> None:
    marker = ws / "PWNED"
    params = resolve({"preset": "smoke", "results_dir": str(ws / "results")})
    ckpt = checkpoint_dir(params, "search") / "last.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(pickle.dumps({"fingerprint": Payload(marker)}))
    rc, lines = rome(ws, capsys, "prepare")
    assert rc == 0, lines
    rc, lines = rome(ws, capsys, "search")
    one_error(rc, lines, "search", str(ckpt), "--fresh")
    assert not marker.exists()
    assert ckpt.is_file()  # refused, not deleted: --fresh is the user's call
    rc, lines = rome(ws, capsys, "search", "--fresh")
    assert rc == 0, lines
    assert not marker.exists()
    out = ws / "results" / "mnist5k" / "darts" / "rome" / "seed0" / "search" / "checkpoint.pt"
    state = torch.load(out, weights_only=True)  # what rome writes, weights_only reads
    assert isinstance(state["rng"]["numpy"]["keys"], torch.Tensor)
    assert not [str(w.message) for w in recwarn if "pickle" in str(w.message)]  # no torch warning reaches the user


def test_crafted_train_resume_file_is_never_unpickled(tmp_path: Path, recwarn) -> None:
    from rome.training.checkpoint import LAST_FILE, _read_resume_file

    marker = tmp_path / "PWNED"
    file = tmp_path / LAST_FILE
    file.write_bytes(pickle.dumps({"state_dict": Payload(marker), "epoch": 1}))
    with pytest.raises(RomeError, match=r"last\.pth\.tar: cannot read the resume checkpoint .*rome train --fresh"):
        _read_resume_file(file)
    assert not marker.exists()
    assert not [str(w.message) for w in recwarn if "pickle" in str(w.message)]


# ----------------------------------------------------------------------------- images


def test_image_header_over_max_pixels_is_refused_before_decoding(ws: Path, capsys) -> None:
    tree = ws / "tree"
    for split, n in (("train", 4), ("test", 2)):
        for cls in ("cat", "dog"):
            (tree / split / cls).mkdir(parents=True)
            for i in range(n):
                (tree / split / cls / f"{i}.png").write_bytes(png(8, i))
    (tree / "train" / "cat" / "bomb.png").write_bytes(bomb_png(60000, 60000))
    common = ("--set", "data.dataset=imagefolder", "--set", f"data.root={tree}", "--set", "data.resize=8")
    rc, lines = rome(ws, capsys, "prepare", *common)
    one_error(rc, lines, "prepare", str(tree / "train" / "cat" / "bomb.png"), "data.max_pixels")
    (tree / "train" / "cat" / "bomb.png").write_bytes(bomb_png(12000, 12000))  # over 100 MP, PIL only warns
    for storage in ("memory", "stream"):
        rc, lines = rome(ws, capsys, "prepare", *common, "--set", f"data.storage={storage}")
        one_error(rc, lines, "prepare", "bomb.png", "data.max_pixels = 100000000")
    (tree / "train" / "cat" / "bomb.png").unlink()
    rc, lines = rome(ws, capsys, "prepare", *common, "--set", "data.max_pixels=63")  # 8x8 = 64 pixels
    one_error(rc, lines, "prepare", "0.png", "data.max_pixels = 63")


# ----------------------------------------------------------------------------- params


@pytest.mark.parametrize("setting", ["search.w_lr=.nan", "search.w_lr=1e309", "search.w_lr=-.inf",
                                     "data.test_fraction=.nan", "train.lr=.inf", "search.tau_max=.nan"])
def test_non_finite_numbers_are_refused_naming_the_key(ws: Path, capsys, setting: str) -> None:
    rc, lines = rome(ws, capsys, "search", "--set", setting)
    one_error(rc, lines, "search", setting.split("=")[0], "finite")


@pytest.mark.parametrize("setting", ["seed=99999999999999999999999", "seed=4294967296", "data.split_seed=18446744073709551616",
                                     "sweep.seeds=[0,4294967296]"])
def test_seeds_are_bounded_to_what_numpy_accepts(ws: Path, capsys, setting: str) -> None:
    rc, lines = rome(ws, capsys, "search", "--set", setting)
    one_error(rc, lines, "search", "4294967295")
    assert not (ws / "state").exists() and not (ws / "results").exists()
    validate({"seed": 2**32 - 1}, "test")  # the largest is accepted


def test_diverging_search_names_w_lr_first(ws: Path, capsys) -> None:
    assert rome(ws, capsys, "prepare")[0] == 0
    rc, lines = rome(ws, capsys, "search", "--set", "search.w_lr=1e30")
    one_error(rc, lines, "search", "loss is not finite", "search.w_lr")


@pytest.mark.parametrize("name,content,fragment", [
    ("latin1", "preset: smoke\n# caf\xe9\n".encode("latin-1"), "not UTF-8"),
    ("dup", b"preset: smoke\nsearch:\n  epochs: 3\nsearch:\n  k_samples: 2\n", "'search' given twice"),
    ("dup-inner", b"preset: smoke\nsearch:\n  epochs: 3\n  epochs: 4\n", "'epochs' given twice"),
    ("aliases", ("preset: smoke\nsearch:\n  space:\n    - &a0 [" + ",".join(["xxxxxxxx"] * 10) + "]\n" + "".join(
        f"    - &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 9))).encode(), "aliases"),
])
def test_hostile_params_file_is_one_line(ws: Path, capsys, name: str, content: bytes, fragment: str) -> None:
    file = ws / f"{name}.yaml"
    file.write_bytes(content)
    t0 = time.perf_counter()
    capsys.readouterr()
    rc = cli.main(["prepare", "--params", str(file)])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    one_error(rc, lines, "prepare", str(file), fragment)
    assert time.perf_counter() - t0 < 10


def test_schema_error_never_renders_a_huge_value() -> None:
    huge = [list(range(1000))] * 1000
    with pytest.raises(RomeError) as info:
        validate({"search": {"space": huge}}, "params.yaml")
    assert len(str(info.value)) < 300 and "search.space" in str(info.value)


# ----------------------------------------------------------------------------- JSON and genotypes


def test_deeply_nested_genotype_is_one_line(ws: Path, capsys) -> None:
    deep = ws / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert rome(ws, capsys, "prepare")[0] == 0
    rc, lines = rome(ws, capsys, "train", "--set", f"train.genotype={deep}")
    one_error(rc, lines, "train", str(deep), "nested deeper than 64")
    mid = ws / "mid.json"
    mid.write_text('{"genotype": ' + "[" * 200 + "]" * 200 + "}")
    with pytest.raises(RomeError, match="nested deeper than 64"):
        load_genotype(mid)


def test_json_artifact_size_and_depth_limits(tmp_path: Path, monkeypatch) -> None:
    import rome.artifacts as artifacts

    f = tmp_path / "manifest.json"
    f.write_text(json.dumps({"a": [0] * 1000}))
    monkeypatch.setattr(artifacts, "MAX_JSON_BYTES", 100)
    with pytest.raises(RomeError, match=r"manifest.json: \d+ bytes; expected a m at most|bytes; expected"):
        read_json(f, "m")
    monkeypatch.undo()
    f.write_text(json.dumps({"a": 1}))
    assert read_json(f, "m") == {"a": 1}


# ----------------------------------------------------------------------------- property-based

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
json_values = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                               st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=30)
PARAM_KEYS = ["seed", "data.split_seed", "data.test_fraction", "data.max_pixels", "data.resize", "search.w_lr",
              "search.epochs", "search.k_samples", "search.tau_min", "train.lr", "search.space", "data.subset",
              "sweep.seeds", "preset", "nope.key"]


@PROPERTY
@given(key=st.sampled_from(PARAM_KEYS), value=json_values)
def test_property_params_values_resolve_or_one_line(key: str, value) -> None:
    section, _, leaf = key.rpartition(".")
    doc = {section: {leaf: value}} if section else {leaf: value}
    try:
        resolve(doc, source="params.yaml")
    except RomeError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 600


@PROPERTY
@given(text=st.text(max_size=200))
def test_property_yaml_text_loads_or_one_line(text: str) -> None:
    try:
        doc = load_yaml(text)
    except yaml.YAMLError:
        return  # read_params_file turns it into `not valid YAML (line N)`
    if isinstance(doc, dict):
        try:
            resolve(doc, source="p.yaml")
        except RomeError as exc:
            assert "\n" not in str(exc)


@PROPERTY
@given(doc=json_values)
def test_property_genotype_documents_load_or_one_line(doc) -> None:
    try:
        genotype_from_document(doc, "g.json")
    except RomeError as exc:
        assert "\n" not in str(exc)


member_names = st.lists(st.sampled_from(["train", "test", "cat", "..", ".", "", "/", "x.png", "a b", "\\", "-"]),
                        min_size=1, max_size=7).map("/".join)
member_types = st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                                tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])


@PROPERTY
@given(name=member_names, kind=member_types, link=member_names)
def test_property_archive_members_are_safe_or_refused(tmp_path_factory, name: str, kind: bytes, link: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    try:
        rel = check_member(info, Path("a.tar.gz"))
    except RomeError as exc:
        assert "\n" not in str(exc) and "a.tar.gz" in str(exc)
        return
    if rel is not None:  # accepted: a regular file whose path stays inside any folder
        assert kind == tarfile.REGTYPE and not rel.is_absolute() and ".." not in rel.parts and len(rel.parts) <= 4
        cache = tmp_path_factory.getbasetemp() / "cache"
        assert (cache / rel).resolve().is_relative_to(cache.resolve())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(name=member_names, kind=member_types, link=member_names)
def test_property_archive_members_end_to_end(tmp_path: Path, name: str, kind: bytes, link: str) -> None:
    """The same generated members inside a real archive, through both storages' readers: the
    in-memory decode and the streamed scan that extracts into a cache. Either the archive loads, or
    one line names it; no other exception, and nothing appears outside the cache."""
    from rome.data.sources import load_imagefolder
    from rome.data.stream import scan_imagefolder

    case = Path(tempfile.mkdtemp(dir=tmp_path))
    data = png(8, 7) if kind == tarfile.REGTYPE else None
    tar = archive(case / "a.tar.gz", lambda t: add(t, name, data, type=kind, linkname=link))
    before = {p for p in tmp_path.rglob("*")}
    cache = case / "cache"
    cache.mkdir()
    for read in (lambda: load_imagefolder(tar, 8), lambda: scan_imagefolder(tar, cache=cache)):
        try:
            read()
        except RomeError as exc:
            assert "\n" not in str(exc) and str(tar) in str(exc), str(exc)
    new = {p for p in tmp_path.rglob("*")} - before
    assert all(p.is_relative_to(cache) for p in new), sorted(new)


@pytest.mark.parametrize("args,fragment", [
    (["--set", "search.w_lr=.nan"], "search.w_lr = nan"),
    (["--set", "seed=99999999999999999999999"], "seed = "),
])
def test_cli_subprocess_one_line(ws: Path, args: list[str], fragment: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-m", "rome.cli", "search", "--params", str(ws / "params.yaml"), *args],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("rome search: error:") and fragment in lines[0], lines
