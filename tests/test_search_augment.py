"""Search-time augmentation: crop offsets and flips as RandomCrop + RandomHorizontalFlip, seeded, in batch, on the batch's device."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from rome.config import resolve
from rome.data.augmentation import random_crop_flip, resolve_search_augment
from rome.errors import RomeError
from rome.search.batches import EndlessBatches
from rome.search.loop import SearchData, build_state
from rome.sections import SearchConfig

SIDE, PAD = 16, 2  # 16 px -> padding 2 (DARTS's 4 at 32 px)


def position_images(n: int, channels: int = 2) -> torch.Tensor:
    """Every pixel nonzero and unique within its image: 1 + 15 i + j (+ 1 per channel)."""
    i = torch.arange(SIDE).view(-1, 1)
    j = torch.arange(SIDE).view(1, -1)
    base = torch.stack([1 + 15 * i + j + c for c in range(channels)])
    return base.expand(n, -1, -1, -1).to(torch.uint8).contiguous()


def recover_transforms(images: torch.Tensor, out: torch.Tensor) -> list[tuple[int, int, bool]]:
    """Per image the (row offset, column offset, flipped) that reproduce it as pad -> slice -> flip, by search
    over every candidate (written independently of the gather under test); exactly one must match."""
    padded = F.pad(images, (PAD,) * 4)
    found = []
    for k in range(len(images)):
        matches = []
        for oy in range(2 * PAD + 1):
            for ox in range(2 * PAD + 1):
                window = padded[k, :, oy:oy + SIDE, ox:ox + SIDE]
                for flipped in (False, True):
                    if torch.equal(window.flip(-1) if flipped else window, out[k]):
                        matches.append((oy, ox, flipped))
        assert len(matches) == 1, (k, matches)
        found.append(matches[0])
    return found


def test_crop_flip_statistics_match_randomcrop_and_flip() -> None:
    images = position_images(800)
    out = random_crop_flip(images, True, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8
    found = recover_transforms(images, out)
    flips = sum(f for _, _, f in found) / len(found)
    assert 0.44 < flips < 0.56  # p = 0.5 (4 sigma at n = 800)
    offsets = {(oy, ox) for oy, ox, _ in found}
    assert offsets == {(oy, ox) for oy in range(5) for ox in range(5)}  # every offset of padding 2 occurs
    # padding zeros appear exactly in the border rows / columns the offset uncovers, and nowhere else
    for k, (oy, ox, _) in enumerate(found[:50]):
        zero_rows = (out[k] == 0).all(dim=(0, 2))
        assert int(zero_rows.sum()) == abs(oy - PAD)
        if oy < PAD:
            assert zero_rows[:PAD - oy].all()
        elif oy > PAD:
            assert zero_rows[SIDE - (oy - PAD):].all()
    assert (out == 0).any() and not (images == 0).any()


def test_crop_without_flip_never_mirrors() -> None:
    images = position_images(300, channels=1)
    found = recover_transforms(images, random_crop_flip(images, False, torch.Generator().manual_seed(1)))
    assert not any(f for _, _, f in found)
    assert len({(oy, ox) for oy, ox, _ in found}) > 20


def test_same_seed_same_crops_other_seed_other_crops() -> None:
    images = position_images(64)
    a = random_crop_flip(images, True, torch.Generator().manual_seed(5))
    b = random_crop_flip(images, True, torch.Generator().manual_seed(5))
    c = random_crop_flip(images, True, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("device", ["meta", *(["cuda"] if torch.cuda.is_available() else [])])
def test_runs_on_the_batch_device(device: str) -> None:
    """The gather runs where the batch is (a CPU index tensor mixed in would fail on meta / CUDA)."""
    images = position_images(8).to(device)
    out = random_crop_flip(images, True, torch.Generator().manual_seed(0))
    assert out.device == images.device and out.shape == images.shape
    if device == "cuda":
        expected = random_crop_flip(images.cpu(), True, torch.Generator().manual_seed(0))
        assert torch.equal(out.cpu(), expected)  # offsets come from the CPU generator: device-independent


def test_auto_follows_the_dataset() -> None:
    assert resolve_search_augment("auto", "cifar10") == "crop_flip"
    assert resolve_search_augment("auto", "cifar100") == "crop_flip"
    assert resolve_search_augment("auto", "svhn") == "crop"
    assert resolve_search_augment("auto", "mnist5k") == "crop"
    assert resolve_search_augment("none", "cifar10") == "none"
    with pytest.raises(RomeError, match="search.augment = 'flip'"):
        resolve_search_augment("flip", "cifar10")


def test_batch_stream_augments_and_its_state_replays_the_crops() -> None:
    images, labels = position_images(40), torch.arange(40) % 3
    raw = EndlessBatches(images, labels, 8, (0.5, 0.5), (0.25, 0.25), torch.Generator().manual_seed(0))
    aug = EndlessBatches(images, labels, 8, (0.5, 0.5), (0.25, 0.25), torch.Generator().manual_seed(0), augment="crop")
    (xr, yr), (xa, ya) = next(raw), next(aug)
    assert torch.equal(yr, ya) and not torch.equal(xr, xa)
    state = aug.state_dict()
    after = [next(aug) for _ in range(7)]  # crosses a pass boundary (5 batches per pass)
    aug.load_state_dict(state)
    replay = [next(aug) for _ in range(7)]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(after, replay))
    with pytest.raises(ValueError, match="resolve 'auto' first"):
        EndlessBatches(images, labels, 8, (0.5,), (0.25,), torch.Generator(), augment="auto")


@pytest.mark.parametrize(("dataset", "setting", "expected"), [
    ("mnist5k", "auto", "crop"), ("cifar10", "auto", "crop_flip"), ("cifar10", "none", "none")])
def test_both_search_halves_get_the_resolved_augmentation(tmp_path: Path, dataset: str, setting: str,
                                                           expected: str) -> None:
    p = resolve({"preset": "smoke"}, [f"results_dir={tmp_path}", f"data.dataset={dataset}",
                                      f"search.augment={setting}"], source="test")
    images, labels = position_images(32, channels=1), torch.arange(32) % 2
    data = SearchData(images[:16], labels[:16], images[16:], labels[16:], (0.5,), (0.25,), 2)
    state = build_state(SearchConfig.from_params(p), p["seed"], p["data"]["dataset"], data)
    assert state.train_batches.augment == state.val_batches.augment == expected
