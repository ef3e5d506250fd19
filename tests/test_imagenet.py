"""The ImageNet search network and presets: the paper's settings in the two presets, the stem's bad input,
the checkpoint fingerprint, and a smoke-size ImageNet-shaped run (random 224 px JPEGs in an imagefolder
archive) through the CLI: prepare, a one-step search per algorithm, derive, a one-step retraining with
the ImageNet network, evaluate; resume, and the ImageNet-stem search across 2 gloo processes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import make_archive, write_image_tree
from rome import cli
from rome.genotype.named import resolve_genotype_ref
from rome.config import resolve
from rome.errors import RomeError
from rome.search.checkpoint import fingerprint
from rome.search.loop import SearchData, build_state
from rome.sections import SearchConfig

ALGORITHMS = ("rome", "gdas", "darts", "pc_darts", "random")


def test_imagenet_presets_hold_the_paper_settings() -> None:
    search = resolve({"preset": "imagenet_search"}, source="test")
    s, d = search["search"], search["data"]
    assert (s["k_samples"], s["epochs"], s["batch_size"], s["stem"]) == (3, 30, 256, "imagenet")
    assert (d["dataset"], d["resize"]) == ("imagefolder", 224)
    assert d["subset"]["search_train"] == d["subset"]["search_val"] == round(0.1 * 1_281_167)  # 10 % / 10 %
    train = resolve({"preset": "imagenet_train"}, source="test")
    t = train["train"]
    assert (t["layers"], t["init_channels"], t["epochs"], t["batch_size"], t["lr"]) == (14, 48, 250, 1024, 0.5)
    assert (t["label_smoothing"], t["warmup_epochs"], t["network"]) == (0.1, 5, "darts_imagenet")
    assert (t["weight_decay"], t["drop_path"], t["auxiliary_weight"], t["random_erasing"]) == (3e-5, 0.0, 0.4, 0.0)
    # one retraining protocol, one prepared dataset: the presets differ only in what they retrain
    assert search["data"] == train["data"] and search["evaluate"] == train["evaluate"]
    assert {k: v for k, v in search["train"].items() if k != "genotype"} == \
        {k: v for k, v in t.items() if k != "genotype"}
    assert search["train"]["genotype"] is None and resolve_genotype_ref(t["genotype"]).is_file()  # a published name


def tiny(side: int, n: int = 8) -> SearchData:
    images = torch.randint(0, 255, (n, 3, side, side), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(n) % 2
    return SearchData(images, labels, images.clone(), labels.clone(), (0.5,) * 3, (0.25,) * 3, 2, "sha")


def config(*overrides: str) -> SearchConfig:
    base = ["search.layers=3", "search.init_channels=4", "search.batch_size=2", "search.epochs=1"]
    return SearchConfig.from_params(resolve({"preset": "smoke"}, [*base, *overrides], source="test"))


def test_imagenet_stem_on_too_small_images_is_a_one_line_error() -> None:
    with pytest.raises(RomeError, match=r"search.stem = 'imagenet': the search images are 16 px, too small .* "
                                        r"expected at least 32 px") as err:
        build_state(config("search.stem=imagenet"), 0, "imagefolder", tiny(16))
    assert "\n" not in str(err.value)
    with pytest.raises(RomeError, match="search.stem = 'imagenet': the NAS-Bench-201 network has its own stem"):
        build_state(config("search.stem=imagenet", "search.space=nb201", "search.layers=1"), 0, "imagefolder", tiny(32))
    with pytest.raises(RomeError, match="search.stem"):
        resolve({"preset": "smoke"}, ["search.stem=resnet"], source="test")
    assert build_state(config("search.stem=imagenet"), 0, "imagefolder", tiny(32)).stem == "imagenet"  # the minimum


def test_cli_refuses_the_imagenet_stem_on_8_px_images_in_one_line(tmp_path: Path, prepared_smoke: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "results"
    shutil.copytree(prepared_smoke, results / "mnist5k" / "prepare")
    params = tmp_path / "params.yaml"
    params.write_text(f"preset: smoke\nresults_dir: {results}\nsearch: {{stem: imagenet}}\n")
    assert cli.main(["search", "--params", str(params)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.endswith("search.stem = 'imagenet': the search images are 8 px, too small for the ImageNet stem; "
                        "expected at least 32 px (3 stride-2 stem convs and 2 reduction cells; 224 px gives cells at "
                        "28/14/7), or search.stem = cifar, or a larger data.resize")


@pytest.mark.parametrize(("side", "space", "stem"), [(8, "darts", "cifar"), (64, "darts", "cifar"),
                                                     (96, "darts", "imagenet"), (224, "darts", "imagenet"),
                                                     (224, "nb201", "cifar")])
def test_auto_stem_follows_the_side(side: int, space: str, stem: str) -> None:
    layers = "search.layers=1" if space == "nb201" else "search.layers=3"
    state = build_state(config(f"search.space={space}", layers), 0, "imagefolder", tiny(side, n=2))
    assert state.stem == stem and hasattr(state.model, "stem0") == (stem == "imagenet")


def test_fingerprint_names_the_stem_only_when_it_is_not_the_cifar_stem() -> None:
    """Checkpoints from before search.stem existed (CIFAR stem) keep their fingerprint, so they still resume."""
    c = config()
    cifar = fingerprint(c, 0, "mnist5k", "sha", "cifar")
    assert not any("stem" in k for k in cifar) and cifar == fingerprint(c, 0, "mnist5k", "sha")
    assert fingerprint(c, 0, "mnist5k", "sha", "imagenet") == {**cifar, "search.stem": "imagenet"}


# ----------------------------------------------------------------------------- a smoke-size ImageNet-shaped run


@pytest.fixture(scope="module")
def imagenet_shaped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(params file, results dir): 2 classes of random 224 px JPEGs (8 + 2 per class) in an archive, prepared."""
    root = tmp_path_factory.mktemp("imagenet_shaped")
    tree = write_image_tree(root / "tree", {"train": 8, "val": 2}, classes=("n01440764", "n01443537"), size=224,
                            suffix=".JPEG")
    archive = make_archive(tree, root / "imagenet-tiny.tar.gz")
    results = root / "results"
    params = root / "params.yaml"
    params.write_text(f"preset: imagenet_search\nresults_dir: {results}\ndevice: cpu\ndeterministic: true\n"
                      f"data: {{root: {archive}}}\ntracking: {{mode: disabled}}\nderive: {{plot: false}}\n")
    assert cli.main(["prepare", "--params", str(params)]) == 0
    return params, results


SMALL_SEARCH = ["search.epochs=1", "search.steps_per_epoch=1", "search.batch_size=2", "search.layers=3",
                "search.init_channels=4", "search.channels_last=false", "search.workers=0"]
SMALL_TRAIN = ["train.epochs=1", "train.steps_per_epoch=1", "train.batch_size=2", "train.layers=3",
               "train.init_channels=8", "train.channels_last=false", "train.workers=0", "train.warmup_epochs=0",
               "evaluate.batch_size=4", "evaluate.latency_batches=1"]


def sets(flags: list[str]) -> list[str]:
    return [arg for flag in flags for arg in ("--set", flag)]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_smoke_imagenet_run_searches_and_derives(imagenet_shaped: tuple[Path, Path], algorithm: str) -> None:
    params, results = imagenet_shaped
    flags = sets([f"search.algorithm={algorithm}", *SMALL_SEARCH])
    assert cli.main(["search", "--params", str(params), *flags]) == 0
    run = results / "imagefolder" / "darts" / algorithm / "seed0"
    doc = json.loads((run / "search" / "search.json").read_text())
    assert doc["stem"] == "imagenet" and doc["input"]["resolution"] == 224 and doc["input"]["classes"] == 2
    ckpt = torch.load(run / "search" / "checkpoint.pt", weights_only=False)
    assert ckpt["fingerprint"]["search.stem"] == "imagenet" and "stem0.0.weight" in ckpt["model"]
    assert cli.main(["derive", "--params", str(params), *flags]) == 0
    assert len(json.loads((run / "derive" / "genotype.json").read_text())["genotype"]["normal"]) == 8


def test_smoke_imagenet_run_retrains_with_the_imagenet_network(imagenet_shaped: tuple[Path, Path]) -> None:
    params, results = imagenet_shaped
    flags = sets([*SMALL_SEARCH, *SMALL_TRAIN, "search.k_samples=2"])
    for stage in ("search", "derive", "train", "evaluate"):
        assert cli.main([stage, "--params", str(params), *flags]) == 0, stage
    run = results / "imagefolder" / "darts" / "rome" / "seed0"
    model = json.loads((run / "train" / "model.json").read_text())
    assert model["network"] == "rome_darts_imagenet" and model["kwargs"]["layers"] == 3
    metrics = json.loads((run / "evaluate" / "metrics.json").read_text())
    assert 0.0 <= metrics["top1"] <= 100.0


def test_imagenet_stem_search_resumes_and_a_cifar_stem_run_refuses_its_checkpoint(tmp_path: Path) -> None:
    from rome.reproducibility import seed_everything
    from rome.search.loop import run_search

    def search(stem: str, ckpt: Path | None = tmp_path, **kw):
        seed_everything(0)
        c = config(f"search.stem={stem}", "search.epochs=2", "search.steps_per_epoch=1")
        return run_search(c, 0, "imagefolder", tiny(32), ckpt, "cpu", progress=False, log=lambda _m: None, **kw)

    assert not search("imagenet", max_epochs_this_run=1).complete
    with pytest.raises(RomeError, match="checkpoint was made with search.stem='imagenet'"):
        search("cifar")  # 32 px: auto would be the CIFAR stem too
    resumed = search("imagenet")
    assert resumed.complete and resumed.state.epoch == 2
    whole = search("imagenet", ckpt=None)
    for name, tensor in whole.state.algorithm.arch.named_tensors().items():
        assert torch.equal(tensor, resumed.state.algorithm.arch.named_tensors()[name]), name
    for name, tensor in whole.state.model.state_dict().items():
        assert torch.equal(tensor, resumed.state.model.state_dict()[name]), name


# ----------------------------------------------------------------------------- across processes (gloo)


def _imagenet_final_state(params: dict, group) -> dict[str, torch.Tensor]:  # noqa: ANN001
    from rome.reproducibility import seed_everything
    from rome.search.loop import run_search

    seed_everything(0)
    result = run_search(SearchConfig.from_params(params), 0, "imagefolder", tiny(64, n=8), None, "cpu",
                        progress=False, log=lambda _m: None, group=group)
    state = {f"arch.{k}": v.detach().clone() for k, v in result.state.algorithm.arch.named_tensors().items()}
    state.update({f"model.{k}": v.detach().clone() for k, v in result.state.model.state_dict().items()})
    return state


def _imagenet_worker(rank: int, world: int, port: int, params: dict, out: str) -> None:
    import os

    import torch.distributed as dist

    from rome.distributed import ProcessGroup

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.save(_imagenet_final_state(params, ProcessGroup(rank, world)), f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("parallel", ["draws", "batch"])
def test_two_processes_run_an_imagenet_stem_search(tmp_path: Path, parallel: str) -> None:
    """search.nproc > 1 on the ImageNet stem. ``draws``: 2 gloo ranks with K = 3 take one process's steps (the
    stems' BatchNorm statistics replayed like the cells'), within the multi-process tolerance. ``batch``
    (data parallel, what the README suggests for the ImageNet search on 8 GPUs): the ranks end identical.

    64 px: the cells run at 8 / 4 / 2 px, the sides of the CIFAR-stem tests (8 px input). At 32 px the last
    cell's BatchNorm normalises 4 values per channel (1 x 1 maps, batch 4), which amplifies the rounding of
    the other reduction order: stem weights 2.4e-5 apart after 4 steps (measured), past the tolerance."""
    import torch.multiprocessing as mp

    from rome.distributed import ProcessGroup
    from test_distributed_search import assert_close, free_port

    params = resolve({"preset": "smoke"}, ["search.layers=3", "search.init_channels=4", "search.batch_size=4",
                                           "search.epochs=2", "search.steps_per_epoch=2", "search.k_samples=3",
                                           "search.stem=imagenet", f"search.parallel={parallel}"], source="test")
    one = _imagenet_final_state(params, ProcessGroup())
    mp.spawn(_imagenet_worker, args=(2, free_port(), params, str(tmp_path / "state")), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"state.{r}") for r in range(2)]
    assert "model.stem0.1.running_mean" in one
    for key in ranks[0]:
        assert torch.equal(ranks[0][key], ranks[1][key]), key
    if parallel == "draws":
        assert_close(one, ranks[0])
