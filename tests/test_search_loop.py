"""The search loop: every space x algorithm, determinism, the GDAS ablation, resume (in-process and after
SIGKILL), the stage's artifacts, and bad input."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import sigkill_once_written
from rome.config import resolve
from rome.errors import RomeError
from rome.reproducibility import seed_everything
from rome.search.algorithms import SearchAlgorithm
from rome.search.checkpoint import CHECKPOINT_FILE
from rome.search.loop import SearchData, run_search
from rome.sections import SearchConfig
from rome.spaces import get_space

REPO = Path(__file__).resolve().parents[1]



def tiny_data(n: int = 32, side: int = 8, channels: int = 1, classes: int = 3, sha: str = "sha-a") -> SearchData:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, classes, (2 * n,), generator=g)
    images = (torch.randint(0, 120, (2 * n, channels, side, side), generator=g) + 60 * labels.view(-1, 1, 1, 1)).clamp(0, 255)
    images = images.to(torch.uint8)
    return SearchData(images[:n], labels[:n], images[n:], labels[n:], (0.5,) * channels, (0.25,) * channels, classes, sha)


def params_for(tmp: Path, *overrides: str) -> dict:
    base = ["search.epochs=2", "search.steps_per_epoch=2", "search.batch_size=8", "search.layers=3",
            "search.init_channels=4", "search.k_samples=2"]
    return resolve({"preset": "smoke"}, [f"results_dir={tmp}", *base, *overrides], source="test")


def search(params: dict, data: SearchData, ckpt: Path | None = None, **kw):
    seed_everything(params["seed"])
    return run_search(SearchConfig.from_params(params), params["seed"], params["data"]["dataset"], data, ckpt, "cpu",
                      progress=False, log=lambda _m: None, **kw)


def arch_of(result) -> dict[str, torch.Tensor]:
    return result.state.algorithm.arch.named_tensors()


def assert_same_arch(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("space", ["darts", "s1", "s2", "s3", "s4", "nb201"])
@pytest.mark.parametrize("algorithm", ["rome", "gdas", "darts", "pc_darts", "random"])
def test_every_space_and_algorithm_runs(tmp_path: Path, space: str, algorithm: str) -> None:
    layers = "search.layers=1" if space == "nb201" else "search.layers=3"
    p = params_for(tmp_path, f"search.space={space}", f"search.algorithm={algorithm}", "search.epochs=1",
                   "search.steps_per_epoch=1", layers)
    before = SearchAlgorithm(algorithm, get_space(space), init_std=1e-3,
                             generator=torch.Generator().manual_seed(p["seed"] * 10 + 1)).arch.named_tensors()
    result = search(p, tiny_data())
    assert result.complete and len(result.history) == 1
    row = result.history[0]
    assert 0.0 <= row["val_acc"] <= 1.0 and row["train_loss"] > 0
    after = arch_of(result)
    expect_beta = (space != "nb201" and algorithm in ("rome", "random")) or algorithm == "pc_darts"
    assert any(k.startswith("beta") for k in after) == expect_beta
    if algorithm == "random":
        assert all(t.std() > 0.3 for t in after.values())  # standard-normal logits, never learned
    else:
        assert all(not torch.equal(before[k], after[k]) for k in after)  # one Adam step moved every tensor


def test_random_arch_params_never_change_and_come_from_the_seed(tmp_path: Path) -> None:
    r1 = search(params_for(tmp_path, "search.algorithm=random", "search.epochs=1"), tiny_data())
    r2 = search(params_for(tmp_path, "search.algorithm=random", "search.epochs=2"), tiny_data())
    r3 = search(params_for(tmp_path, "search.algorithm=random", "seed=1"), tiny_data())
    assert_same_arch(arch_of(r1), arch_of(r2))
    assert not torch.equal(arch_of(r1)["alpha_normal"], arch_of(r3)["alpha_normal"])


def test_same_seed_same_architecture_bit_exact(tmp_path: Path) -> None:
    p = params_for(tmp_path)
    assert p["search"]["channels_last"] == "auto"  # the default layout: NHWC on a oneDNN CPU (rome.layout)
    a, b = search(p, tiny_data()), search(p, tiny_data())
    assert_same_arch(arch_of(a), arch_of(b))
    c = search(params_for(tmp_path, "seed=3"), tiny_data())
    assert not torch.equal(arch_of(a)["beta_normal"], arch_of(c)["beta_normal"])


def test_rome_k1_without_topology_is_gdas(tmp_path: Path) -> None:
    """The paper's ablation: no topology disentanglement and no accumulation = GDAS."""
    gdas = search(params_for(tmp_path, "search.algorithm=gdas"), tiny_data())
    ablation = search(params_for(tmp_path, "search.algorithm=rome", "search.k_samples=1", "search.topology=false"), tiny_data())
    assert_same_arch(arch_of(gdas), arch_of(ablation))
    assert gdas.history[-1]["val_loss"] == ablation.history[-1]["val_loss"]
    topo = search(params_for(tmp_path, "search.algorithm=rome", "search.k_samples=1"), tiny_data())
    assert not torch.equal(arch_of(gdas)["alpha_normal"], arch_of(topo)["alpha_normal"])


def test_resume_in_process_equals_uninterrupted(tmp_path: Path) -> None:
    p = params_for(tmp_path, "search.epochs=3")
    assert p["search"]["channels_last"] == "auto"  # resume is exact with the default layout
    full = search(p, tiny_data())
    ckpt = tmp_path / "ckpt"
    first = search(p, tiny_data(), ckpt, max_epochs_this_run=1)
    assert not first.complete and (ckpt / CHECKPOINT_FILE).is_file()
    torch.manual_seed(12345)  # a new process would not share the old RNG state; the checkpoint must restore it
    resumed = search(p, tiny_data(), ckpt)
    assert resumed.complete and len(resumed.history) == 3
    assert_same_arch(arch_of(full), arch_of(resumed))
    resumed_weights = resumed.state.model.state_dict()
    for k, v in full.state.model.state_dict().items():
        assert torch.equal(v, resumed_weights[k]), k
    assert [h["val_loss"] for h in full.history] == [h["val_loss"] for h in resumed.history]
    again = search(p, tiny_data(), ckpt)  # a finished checkpoint: nothing left to run
    assert_same_arch(arch_of(full), arch_of(again))


def test_checkpoint_of_another_config_is_refused_and_kept(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    search(params_for(tmp_path, "search.space=s2"), tiny_data(), ckpt, max_epochs_this_run=1)
    file = ckpt / CHECKPOINT_FILE
    before = file.read_bytes()
    with pytest.raises(RomeError) as info:
        search(params_for(tmp_path, "search.space=darts"), tiny_data(), ckpt)
    msg = str(info.value)
    assert "\n" not in msg and str(file) in msg
    assert "search.space='s2', params say 'darts'" in msg and "delete the checkpoint folder" in msg
    with pytest.raises(RomeError, match="search.init_channels=4, params say 6"):
        search(params_for(tmp_path, "search.space=s2", "search.init_channels=6"), tiny_data(), ckpt)
    with pytest.raises(RomeError, match="dataset manifest sha256='sha-a', params say 'sha-b'"):
        search(params_for(tmp_path, "search.space=s2"), tiny_data(sha="sha-b"), ckpt)
    assert file.read_bytes() == before


def test_corrupt_checkpoint_is_a_one_line_error(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / CHECKPOINT_FILE).write_bytes(b"not a checkpoint at all")
    with pytest.raises(RomeError, match="corrupt checkpoint") as info:
        search(params_for(tmp_path), tiny_data(), ckpt)
    assert "\n" not in str(info.value)
    search(params_for(tmp_path), tiny_data(), tmp_path / "ok", max_epochs_this_run=1)
    blob = (tmp_path / "ok" / CHECKPOINT_FILE).read_bytes()
    (ckpt / CHECKPOINT_FILE).write_bytes(blob[: len(blob) // 2])  # truncated by a full disk, say
    with pytest.raises(RomeError, match="corrupt checkpoint"):
        search(params_for(tmp_path), tiny_data(), ckpt)


def test_bad_input_errors() -> None:
    with pytest.raises(RomeError, match="search.space"):
        get_space("s9")
    with pytest.raises(RomeError, match="search.algorithm = 'pcdarts'"):
        SearchAlgorithm("pcdarts", get_space("darts"))
    with pytest.raises(RomeError, match="search.k_samples"):
        resolve({"preset": "smoke"}, ["search.k_samples=0"], source="test")
    with pytest.raises(RomeError, match="search.space"):
        resolve({"preset": "smoke"}, ["search.space=s9"], source="test")


def test_batch_larger_than_the_split_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RomeError, match="search.batch_size = 64"):
        search(params_for(tmp_path, "search.batch_size=64"), tiny_data(n=32))


# ----------------------------------------------------------------------------- the stage, end to end


def _results_with_prepared(prepared_smoke: Path, root: Path) -> Path:
    results = root / "results"
    shutil.copytree(prepared_smoke, results / "mnist5k" / "prepare")
    return results


def test_stage_writes_every_artifact(tmp_path: Path, prepared_smoke: Path) -> None:
    from rome.paths import checkpoint_dir, stage_dir
    from rome.stages import search as stage
    from rome.stages.derive import derive_from_search, read_search

    results = _results_with_prepared(prepared_smoke, tmp_path)
    params = resolve({"preset": "smoke"}, [f"results_dir={results}", "search.rome_variant=v1"], source="test")
    out = stage.run(params, stage_dir(params, "search"))
    names = {p.name for p in out.iterdir()}
    assert {"arch.safetensors", "search.json", "history.json", "history.csv", "probabilities.csv", "metrics.json",
            "checkpoint.pt", "curves.png", "alpha.png"} <= names
    for png in ("curves.png", "alpha.png"):  # the pictures, deterministic: no Software / date metadata
        assert (out / png).read_bytes().startswith(b"\x89PNG") and b"Software" not in (out / png).read_bytes()
    # a finished run's checkpoint moves into the artifact: state/ only holds interrupted runs
    assert not checkpoint_dir(params, "search").exists()
    assert torch.load(out / "checkpoint.pt", weights_only=False)["epoch"] == 2
    arch = load_file(str(out / "arch.safetensors"))
    assert set(arch) == {"alpha_normal", "alpha_reduce", "beta_normal", "beta_reduce"}
    assert arch["alpha_normal"].shape == (14, 7) and arch["beta_normal"].shape == (20,)
    doc = json.loads((out / "search.json").read_text())
    assert doc["schema_version"] == 1 and doc["space"] == "darts" and doc["variant"] == "v1"
    assert len(doc["ops"]["normal"]) == 14 and doc["in_degree"] == [2, 2, 2, 2] and len(doc["pairs"]) == 20
    assert doc["provenance"]["stage"] == "search" and doc["provenance"]["data_sha256"]
    assert doc["tau_final"] == params["search"]["tau_min"]
    history = json.loads((out / "history.json").read_text())["epochs"]
    assert [h["epoch"] for h in history] == [1, 2]
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert len(rows) == 2 and float(rows[1]["val_acc"]) == history[1]["val_acc"]
    probs = list(csv.DictReader((out / "probabilities.csv").open()))
    assert len(probs) == 2 * 2 * (14 * 7 + 20)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"supernet_val_acc", "supernet_val_loss", "n_param_free_normal"}
    # measured (not computed) figures live in the run record in state/, outside the artifact
    from rome.paths import run_record_path

    record = json.loads(run_record_path(params, "search").read_text())
    assert record["seconds"] > 0 and [e["epoch"] for e in record["epochs"]] == [1, 2]
    assert "seconds" not in doc and "environment" not in doc and "created_unix" not in json.dumps(doc)
    # the contract with `rome derive`: it reads these files and finds the genotype of the last epoch
    meta, tensors = read_search(out)
    genotype, rule, _ = derive_from_search(meta, tensors, str(out))
    assert rule == "rome"
    assert [list(e) for e in genotype.normal] == history[-1]["genotype"]["normal"]


def _cli(params_file: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rome.cli", "search", "--params", str(params_file)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_then_rerun_equals_an_uninterrupted_run(tmp_path: Path, prepared_smoke: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    search_params = {"epochs": 4, "steps_per_epoch": 6, "k_samples": 2}
    files = {}
    for name in ("killed", "reference"):
        results = _results_with_prepared(prepared_smoke, tmp_path / name)
        files[name] = tmp_path / f"{name}.yaml"
        files[name].write_text(yaml.safe_dump({"preset": "smoke", "results_dir": str(results), "search": search_params}))
    ckpt = tmp_path / "killed" / "state" / "mnist5k" / "darts" / "rome" / "seed0" / "search_ckpt" / CHECKPOINT_FILE
    sigkill_once_written(_cli(files["killed"], env), ckpt)
    epoch_at_kill = torch.load(ckpt, weights_only=False)["epoch"]
    assert 1 <= epoch_at_kill < search_params["epochs"]
    out_dir = tmp_path / "killed" / "results" / "mnist5k" / "darts" / "rome" / "seed0" / "search"
    assert not out_dir.exists()

    resumed = _cli(files["killed"], env)
    reference = _cli(files["reference"], env)
    r_out, r_err = resumed.communicate(timeout=300)
    f_out, f_err = reference.communicate(timeout=300)
    assert resumed.returncode == 0, r_err
    assert reference.returncode == 0, f_err
    assert f"resuming {ckpt} after epoch {epoch_at_kill}/4" in r_err
    assert not ckpt.parent.exists()  # finished: the checkpoint moved into the artifact, no stale temp file left
    assert (out_dir / "checkpoint.pt").is_file()
    assert r_out.strip().splitlines()[-1] == str(out_dir)
    a = load_file(str(out_dir / "arch.safetensors"))
    b = load_file(str(Path(f_out.strip().splitlines()[-1]) / "arch.safetensors"))
    assert_same_arch(a, b)
    ha = json.loads((out_dir / "history.json").read_text())["epochs"]
    hb = json.loads((Path(f_out.strip().splitlines()[-1]) / "history.json").read_text())["epochs"]
    assert [h["val_loss"] for h in ha] == [h["val_loss"] for h in hb]


@pytest.mark.parametrize(("space", "algorithm"), [("darts", "rome"), ("nb201", "darts")])
def test_runs_under_deterministic_algorithms(tmp_path: Path, space: str, algorithm: str) -> None:
    from rome.reproducibility import set_deterministic

    p = params_for(tmp_path, f"search.space={space}", f"search.algorithm={algorithm}", "search.epochs=1",
                   "search.layers=1", "deterministic=true")
    set_deterministic(True)
    try:
        a = search(p, tiny_data())
        b = search(p, tiny_data())
    finally:
        set_deterministic(False)
    assert_same_arch(arch_of(a), arch_of(b))


def test_channels_last_and_amp_flags_run_on_cpu(tmp_path: Path) -> None:
    p = params_for(tmp_path, "search.channels_last=true", "search.amp=bf16", "search.epochs=1")
    result = search(p, tiny_data())
    assert result.complete
    assert next(result.state.model.parameters()).device.type == "cpu"


@pytest.mark.parametrize(("space", "algorithm", "extra"), [
    ("darts", "rome", ()), ("darts", "rome", ("search.topology=false",)), ("darts", "gdas", ()),
    ("s3", "darts", ()), ("s1", "random", ()), ("nb201", "rome", ("search.layers=1",)), ("darts", "pc_darts", ()),
    ("s3", "pc_darts", ()),
])
def test_derive_reads_the_search_outputs(tmp_path: Path, space: str, algorithm: str, extra: tuple[str, ...]) -> None:
    """Contract with `rome derive`: its genotype equals the last epoch's genotype in the history."""
    from rome.stages.derive import derive_from_search, read_search
    from rome.stages.search import write_outputs

    p = params_for(tmp_path, f"search.space={space}", f"search.algorithm={algorithm}", "search.epochs=1", *extra)
    result = search(p, tiny_data())
    out = tmp_path / "search"
    out.mkdir()
    write_outputs(out, result, p, "sha-a")
    meta, tensors = read_search(out)
    genotype, rule, _ = derive_from_search(meta, tensors, str(out))
    assert rule == result.state.algorithm.derivation_rule
    last = result.history[-1]["genotype"]
    if space == "nb201":
        assert [[op, j] for node in genotype.nodes for op, j in node] == last["normal"]
    else:
        assert [list(e) for e in genotype.normal] == last["normal"]
        assert [list(e) for e in genotype.reduce] == last["reduce"]
