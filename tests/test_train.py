"""rome train: artifacts, exact resume after a kill, bad checkpoints, and the DARTS-protocol pieces."""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import pytest
import timm.data
import torch
from safetensors.torch import load_file

from conftest import REPO, smoke
from rome.errors import RomeError
from rome.genotype import NB201Genotype, genotype_document, load_genotype
from rome.paths import checkpoint_dir, stage_dir
from rome.sections import TrainConfig
from rome.stages import train
from rome.training import augment, checkpoint, network
from rome.training.flops import multiply_adds_m, params_m
from rome.training.loop import StepSettings, train_one_epoch

DARTS_V2 = REPO / "src" / "rome" / "genotype" / "published" / "darts_v2.json"
NB201_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"


def params_for(tmp_path: Path, prepared: Path, *overrides: str) -> dict:
    """Smoke params in their own results dir, sharing the session's prepared data through a symlink."""
    results = tmp_path / "results"
    params = smoke(results, f"train.genotype={DARTS_V2}", *overrides)
    link = stage_dir(params, "prepare")
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(prepared, target_is_directory=True)
    return params


def run_train(params: dict, fresh: bool = False) -> Path:
    return train.run(params, stage_dir(params, "train"), argparse.Namespace(fresh=fresh))


def rows(file: Path) -> list[dict[str, str]]:
    with open(file, newline="") as fh:
        return list(csv.DictReader(fh))


# ----------------------------------------------------------------------------- artifacts


def test_train_writes_artifacts_and_extends(tmp_path, prepared_smoke, monkeypatch):
    params = params_for(tmp_path, prepared_smoke)
    ramp = []
    real_set = network.set_drop_path
    monkeypatch.setattr(network, "set_drop_path", lambda m, p: (ramp.append(p), real_set(m, p)))
    out = run_train(params)

    assert {p.name for p in out.iterdir()} == {"model.safetensors", "model.json", "summary.csv", "metrics.json",
                                               "curves.png"}
    png = (out / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and b"Software" not in png  # no metadata: same summary, same bytes
    summary = rows(out / "summary.csv")
    assert [int(r["epoch"]) for r in summary] == [0, 1]
    assert {"train_loss", "train_top1", "eval_loss", "eval_top1", "eval_top5", "lr"} <= set(summary[0])
    # cosine per optimizer step: 2 epochs x 2 steps, epoch 1 starts after 2 of 4 updates -> lr / 2
    lr = params["train"]["lr"]
    assert float(summary[0]["lr"]) == pytest.approx(lr)
    assert float(summary[1]["lr"]) == pytest.approx(lr * 0.5 * (1 + math.cos(math.pi * 2 / 4)))
    # DARTS drop-path ramp: p = drop_path * epoch / epochs
    assert ramp == pytest.approx([0.0, params["train"]["drop_path"] / 2])

    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"top1", "top5", "loss", "best_top1"}  # numbers only: `dvc metrics show`
    training = json.loads((out / "model.json").read_text())["training"]
    assert training["epochs"] == 2 and training["steps_per_epoch"] == 2 and training["best_epoch"] in (0, 1)
    assert json.loads((out / "model.json").read_text())["weights"] == "final"
    assert 0 <= metrics["top1"] <= metrics["top5"] <= 100
    assert metrics["best_top1"] == max(float(r["eval_top1"]) for r in summary)
    assert metrics["top1"] == pytest.approx(float(summary[-1]["eval_top1"]))  # the final weights, not the best

    doc = json.loads((out / "model.json").read_text())
    assert doc["network"] == "rome_darts_cifar" and doc["schema_version"] == 1
    assert doc["kwargs"]["genotype"] == load_genotype(DARTS_V2).to_dict()
    overlay = doc["kwargs"]["pretrained_cfg_overlay"]
    assert doc["kwargs"] | {"genotype": None, "pretrained_cfg_overlay": None} == {
        "genotype": None, "pretrained_cfg_overlay": None, "num_classes": 10, "in_chans": 1, "layers": 3, "init_channels": 4}
    # timm resolves the data the model was trained on, not its 3x224 ImageNet fallback
    assert overlay["input_size"] == [1, 8, 8] and overlay["mean"] == doc["mean"] and overlay["std"] == doc["std"]
    assert doc["resolution"] == 8 and len(doc["mean"]) == len(doc["std"]) == 1
    assert doc["provenance"]["stage"] == "train" and set(doc["provenance"]["params"]) >= {"data", "train"}
    assert doc["provenance"]["data_sha256"]
    # exported weights: deployable network (no auxiliary head) and loadable strictly
    state = load_file(str(out / "model.safetensors"))
    assert not any(k.startswith("auxiliary_head.") for k in state)
    model = network.build(doc["network"], doc["kwargs"])
    model.load_state_dict(state, strict=True)
    cfg = timm.data.resolve_model_data_config(model)
    assert cfg["input_size"] == (1, 8, 8) and cfg["mean"] == tuple(doc["mean"]) and cfg["std"] == tuple(doc["std"])
    assert model.pretrained_cfg["num_classes"] == 10

    ckpt = checkpoint_dir(params, "train")
    assert {"last.pth.tar", "model_best.pth.tar", "run.json", "summary.csv"} <= {p.name for p in ckpt.iterdir()}

    # train.epochs may grow: the same command continues from the last checkpoint
    longer = params_for(tmp_path, prepared_smoke, "train.epochs=3")
    run_train(longer)
    assert [int(r["epoch"]) for r in rows(out / "summary.csv")] == [0, 1, 2]
    # ... but not shrink below what the checkpoint already finished
    with pytest.raises(RomeError, match=r"train.epochs = 1: .*last.pth.tar already finished 3 epochs"):
        run_train(params_for(tmp_path, prepared_smoke, "train.epochs=1"))


def test_resume_after_kill_is_exact(tmp_path, prepared_smoke, monkeypatch):
    """Killed after epoch 1's summary row but before its checkpoint: the rerun redoes epoch 1 and
    ends with exactly the weights and summary of an uninterrupted run."""
    overrides = ("train.epochs=3", "train.random_erasing=1.0")
    straight = run_train(params_for(tmp_path / "a", prepared_smoke, *overrides))
    assert params_for(tmp_path / "a", prepared_smoke)["train"]["channels_last"] == "auto"  # the default layout

    params = params_for(tmp_path / "b", prepared_smoke, *overrides)
    real_update = train.update_summary

    def killed(epoch, *args, **kwargs):
        real_update(epoch, *args, **kwargs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(train, "update_summary", killed)
    with pytest.raises(KeyboardInterrupt):
        run_train(params)
    assert not stage_dir(params, "train").exists()  # nothing half-written
    assert len(rows(checkpoint_dir(params, "train") / "summary.csv")) == 2
    monkeypatch.setattr(train, "update_summary", real_update)
    resumed = run_train(params)

    a, b = load_file(str(straight / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert rows(straight / "summary.csv") == rows(resumed / "summary.csv")


def test_ema_weights_are_exported(tmp_path, prepared_smoke):
    params = params_for(tmp_path, prepared_smoke, "train.ema=true", "train.ema_decay=0.5", "train.epochs=1")
    out = run_train(params)
    assert json.loads((out / "model.json").read_text())["weights"] == "ema"
    ckpt = torch.load(checkpoint_dir(params, "train") / "last.pth.tar", weights_only=True)
    exported = load_file(str(out / "model.safetensors"))
    assert all(torch.equal(exported[k], ckpt["state_dict_ema"][k]) for k in exported)
    floats = [k for k in exported if exported[k].is_floating_point()]
    assert any(not torch.equal(exported[k], ckpt["state_dict"][k]) for k in floats)


def test_mixup_smoothing_and_derived_genotype(tmp_path, prepared_smoke):
    """train.genotype null reads derive/genotype.json; mixup + label smoothing + cutout run end to end."""
    params = params_for(tmp_path, prepared_smoke, "train.genotype=null", "train.mixup=0.2",
                        "train.label_smoothing=0.1", "train.random_erasing=1.0", "train.epochs=1")
    derived = stage_dir(params, "derive") / "genotype.json"
    derived.parent.mkdir(parents=True)
    doc = genotype_document(load_genotype(DARTS_V2), "darts", provenance={"stage": "derive"})
    derived.write_text(json.dumps(doc))
    out = run_train(params)
    doc = json.loads((out / "model.json").read_text())
    assert doc["genotype_file"] is None and doc["genotype_provenance"] == {"stage": "derive"}
    assert doc["space"] == "darts" and doc["nb201_arch"] is None


def test_nb201_cell_trains_without_auxiliary_head(tmp_path, prepared_smoke, capfd):
    geno = tmp_path / "nb201.txt"
    geno.write_text(NB201_ARCH)
    params = params_for(tmp_path, prepared_smoke, f"train.genotype={geno}", "train.epochs=1")
    assert params["train"]["auxiliary_weight"] > 0
    out = run_train(params)
    doc = json.loads((out / "model.json").read_text())
    assert doc["network"] == "rome_nb201" and doc["nb201_arch"] == NB201_ARCH and doc["space"] == "nb201"
    assert "auxiliary_weight ignored" in capfd.readouterr().err


# ----------------------------------------------------------------------------- bad input


def test_checkpoint_of_another_network_is_refused(tmp_path, prepared_smoke):
    params = params_for(tmp_path, prepared_smoke, "train.epochs=1")
    run_train(params)
    last = checkpoint_dir(params, "train") / "last.pth.tar"
    ckpt = torch.load(last, weights_only=True)
    key = next(iter(ckpt["state_dict"]))
    ckpt["state_dict"][key] = torch.zeros(7, 7)
    torch.save(ckpt, last)
    with pytest.raises(RomeError) as err:
        run_train(params_for(tmp_path, prepared_smoke, "train.epochs=2"))
    msg = str(err.value)
    assert str(last) in msg and repr(key) in msg and "(7, 7)" in msg and "\n" not in msg


def test_garbage_resume_file_is_refused(tmp_path, prepared_smoke):
    params = params_for(tmp_path, prepared_smoke, "train.epochs=1")
    run_train(params)
    last = checkpoint_dir(params, "train") / "last.pth.tar"
    last.write_bytes(b"not a checkpoint")
    with pytest.raises(RomeError, match="cannot read the resume checkpoint"):
        run_train(params)
    run_train(params, fresh=True)  # --fresh discards it


def test_changed_params_refuse_resume_until_fresh(tmp_path, prepared_smoke):
    """An *interrupted* run (no completion marker) with other params is refused, never overwritten."""
    params = params_for(tmp_path, prepared_smoke, "train.epochs=1")
    run_train(params)
    ckpt = checkpoint_dir(params, "train")
    (ckpt / "complete.json").unlink()  # as if killed before the artifact was written
    before = (ckpt / "last.pth.tar").read_bytes()
    changed = params_for(tmp_path, prepared_smoke, "train.epochs=2", "train.lr=0.05")
    with pytest.raises(RomeError, match=r"different run \(train.lr = 0.025 in the checkpoint, 0.05 now\)"):
        run_train(changed)
    assert (ckpt / "last.pth.tar").read_bytes() == before
    out = run_train(changed, fresh=True)
    assert len(rows(out / "summary.csv")) == 2


def test_finished_run_with_other_params_starts_fresh(tmp_path, prepared_smoke, capsys):
    """What `dvc repro` needs after a retraining param changed: the finished run's folder is discarded."""
    run_train(params_for(tmp_path, prepared_smoke, "train.epochs=1"))
    out = run_train(params_for(tmp_path, prepared_smoke, "train.epochs=1", "train.lr=0.05"))
    assert "holds a finished run with other params; starting fresh" in capsys.readouterr().err
    assert len(rows(out / "summary.csv")) == 1


def test_finished_run_can_be_extended(tmp_path, prepared_smoke):
    run_train(params_for(tmp_path, prepared_smoke, "train.epochs=1"))
    out = run_train(params_for(tmp_path, prepared_smoke, "train.epochs=2"))
    assert [int(r["epoch"]) for r in rows(out / "summary.csv")] == [0, 1]


def test_network_that_does_not_fit_the_genotype(tmp_path, prepared_smoke):
    with pytest.raises(RomeError, match="train.network = 'nb201': .*darts_v2.json holds a DARTS-format genotype"):
        run_train(params_for(tmp_path, prepared_smoke, "train.network=nb201"))


def test_missing_derived_genotype(tmp_path, prepared_smoke):
    params = params_for(tmp_path, prepared_smoke, "train.genotype=null")
    with pytest.raises(RomeError, match="genotype.json: genotype file not found"):
        run_train(params)


def test_odd_batch_with_mixup(prepared_smoke, tmp_path):
    params = params_for(tmp_path, prepared_smoke, "train.mixup=0.2", "train.batch_size=15")
    with pytest.raises(RomeError, match="train.batch_size = 15: expected an even batch size"):
        train.make_criterion(TrainConfig.from_params(params), 10)


# ----------------------------------------------------------------------------- pieces


def test_first_mismatch_names_key_and_shape():
    a = {"w": torch.zeros(2, 3), "b": torch.zeros(2)}
    assert checkpoint.first_mismatch(a, dict(a)) is None
    assert "'w' has shape (3, 2)" in checkpoint.first_mismatch(a, {"w": torch.zeros(3, 2), "b": torch.zeros(2)})
    assert "'b' (2,) missing" in checkpoint.first_mismatch(a, {"w": torch.zeros(2, 3)})
    assert "'x' (1,) is not in the network" in checkpoint.first_mismatch(a, {**a, "x": torch.zeros(1)})


def test_optimizer_is_darts_sgd(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    cfg = TrainConfig.from_params(smoke(tmp_path, "train.lr=0.1", "train.weight_decay=3e-4", "train.momentum=0.9"))
    opt = train.make_optimizer(model, cfg)
    assert isinstance(opt, torch.optim.SGD)
    assert all(g["weight_decay"] == 3e-4 and not g["nesterov"] and g["momentum"] == 0.9 for g in opt.param_groups)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))


def test_auxiliary_loss_is_weighted():
    """With uniform main and auxiliary logits the step loss is (1 + w) * ln(classes)."""

    class TwoHeads(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(4, 5))

        def forward(self, x):
            z = x.flatten(1)[:, :4] @ self.w
            return z, z * 2

    batches = [(torch.randn(6, 1, 2, 2), torch.randint(0, 5, (6,)))]
    model = TwoHeads()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    settings = StepSettings(device=torch.device("cpu"), aux_weight=0.4, grad_clip=5.0)
    metrics, updates = train_one_epoch(model, batches, 1, opt, torch.nn.CrossEntropyLoss(), settings)
    assert updates == 1 and metrics["loss"] == pytest.approx(1.4 * math.log(5), rel=1e-6)


def test_augmentation_choices():
    assert not augment.uses_flip("mnist5k") and augment.uses_flip("cifar10")
    assert augment.crop_padding(32) == 4 and augment.crop_padding(8) == 1
    assert augment.cutout(0.0) is None
    erase = augment.cutout(1.0)
    x = erase(torch.ones(3, 1, 16, 16))
    assert [(img == 0).sum().item() for img in x] == [64, 64, 64]  # one 8x8 square = half the side
    assert augment.train_transform(16, flip=True)(torch.rand(1, 16, 16)).shape == (1, 16, 16)


def test_epoch_seeds_differ_and_repeat():
    assert train.epoch_seed(0, 1) == train.epoch_seed(0, 1)
    assert len({train.epoch_seed(s, e) for s in range(3) for e in range(50)}) == 150


def test_flops_are_multiply_adds():
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1, bias=False), torch.nn.Flatten(),
                               torch.nn.Linear(2 * 8 * 8, 3, bias=False))
    assert multiply_adds_m(conv, 1, 8) == pytest.approx((8 * 8 * 2 * 9 + 128 * 3) / 1e6)
    assert params_m(conv) == pytest.approx((18 + 384) / 1e6)


def test_nb201_genotype_source(tmp_path):
    geno = tmp_path / "g.txt"
    geno.write_text(NB201_ARCH)
    src = network.load_source(geno)
    assert isinstance(src.genotype, NB201Genotype) and src.nb201_arch == NB201_ARCH
    assert network.network_name("auto", src, 32) == "rome_nb201"
    assert network.network_name("auto", src, 224) == "rome_nb201"
    assert network.network_name("auto", network.load_source(DARTS_V2), 32) == "rome_darts_cifar"
    assert network.network_name("auto", network.load_source(DARTS_V2), 64) == "rome_darts_cifar"
    assert network.network_name("auto", network.load_source(DARTS_V2), 96) == "rome_darts_imagenet"
    assert network.network_name("auto", network.load_source(DARTS_V2), 224) == "rome_darts_imagenet"


def test_bf16_channels_last_step_runs():
    """The GPU options (bf16 autocast, channels_last) go through the same loop; checked on CPU here."""
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(64, 5))
    model = model.to(memory_format=torch.channels_last)
    batches = [(torch.randn(4, 1, 4, 4), torch.randint(0, 5, (4,)))]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    settings = StepSettings(device=torch.device("cpu"), amp="bf16", channels_last=True, grad_clip=1.0)
    before = model[0].weight.detach().clone()
    metrics, _ = train_one_epoch(model, batches, 1, opt, torch.nn.CrossEntropyLoss(), settings)
    assert math.isfinite(metrics["loss"]) and not torch.equal(before, model[0].weight)
    assert model[0].weight.dtype == torch.float32  # autocast, not a bf16 model


def test_warmup_starts_at_one_hundredth(tmp_path, prepared_smoke):
    params = params_for(tmp_path, prepared_smoke, "train.warmup_epochs=1", "train.auxiliary_weight=0")
    out = run_train(params)
    lrs = [float(r["lr"]) for r in rows(out / "summary.csv")]
    assert lrs[0] == pytest.approx(params["train"]["lr"] / 100) and lrs[1] > lrs[0]


def test_trim_summary_keeps_timms_format_and_drops_redone_epochs(tmp_path: Path) -> None:
    """A resume drops the summary rows of epochs it will redo; the kept rows are byte-for-byte what timm wrote."""
    from timm.utils import update_summary

    summary = tmp_path / "summary.csv"
    for epoch in range(4):
        update_summary(epoch, {"loss": 1.0 / (epoch + 1)}, {"top1": 10.0 * epoch}, summary,
                       write_header=epoch == 0)
    whole = summary.read_bytes()
    lines = whole.split(b"\r\n")
    train.trim_summary(summary, start_epoch=2)
    assert summary.read_bytes() == b"\r\n".join(lines[:3]) + b"\r\n"  # header + epochs 0, 1
    update_summary(2, {"loss": 1.0 / 3}, {"top1": 20.0}, summary)
    update_summary(3, {"loss": 1.0 / 4}, {"top1": 30.0}, summary)
    assert summary.read_bytes() == whole  # the resumed run's file equals the uninterrupted one
    train.trim_summary(summary, start_epoch=9)  # nothing to redo: untouched
    assert summary.read_bytes() == whole
    train.trim_summary(summary, start_epoch=0)
    assert summary.read_bytes() == b""
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]  # no temporary file left
