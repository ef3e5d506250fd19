"""Fixed, seeded, class-stratified splits.

``search_train`` / ``search_val`` are disjoint halves of the training pool (DARTS's 50/50
bi-level split); ``train`` is the whole pool (retraining), ``test`` the source's test split or,
for sources without one (mnist5k), a stratified ``data.test_fraction`` held out first.
"""

from __future__ import annotations

import numpy as np

SPLITS = ("search_train", "search_val", "train", "test")


def stratified_partition(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split indices so each class contributes round(fraction * its count) to the first part."""
    first, second = [], []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        cut = int(round(fraction * len(idx)))
        first.append(idx[:cut])
        second.append(idx[cut:])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))


def stratified_subset(labels: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    """``n`` indices with class proportions kept (largest-remainder quotas); all when n is None/too big."""
    if n is None or n >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n / len(labels)
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota), kind="stable")[: n - quota.sum()]:
        quota[i] += 1
    picked = []
    for cls, q in zip(classes, quota):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        picked.append(idx[:q])
    return np.sort(np.concatenate(picked))


def make_splits(train_labels: np.ndarray, test_labels: np.ndarray | None, test_fraction: float,
                subset: dict[str, int | None], seed: int) -> dict[str, tuple[str, np.ndarray]]:
    """Indices per split as (source, indices), source being 'train' or 'test' of the raw dataset."""
    rng = np.random.default_rng(seed)
    if test_labels is None:
        test_idx, pool = stratified_partition(train_labels, test_fraction, rng)
        test_source = "train"
        test_pool_labels = train_labels[test_idx]
    else:
        pool = np.arange(len(train_labels))
        test_idx, test_source, test_pool_labels = np.arange(len(test_labels)), "test", test_labels
    pool_labels = train_labels[pool]
    half_a, half_b = stratified_partition(pool_labels, 0.5, rng)
    out: dict[str, tuple[str, np.ndarray]] = {}
    for name, local in (("search_train", half_a), ("search_val", half_b), ("train", np.arange(len(pool)))):
        keep = stratified_subset(pool_labels[local], subset.get(name), rng)
        out[name] = ("train", pool[local[keep]])
    keep = stratified_subset(test_pool_labels, subset.get("test"), rng)
    out["test"] = (test_source, test_idx[keep])
    # Stored order is shuffled: sources are often sorted by class (mnist5k's CSV, imagefolder
    # trees), and a capped in-order validation pass would otherwise see only the first classes.
    # The rng draws are in a fixed order, so the same seed always gives the same splits.
    return {name: (src, rng.permutation(idx)) for name, (src, idx) in out.items()}
