"""Early stopping of a search (``search.early_stop``): when to stop, and which epoch's architecture to keep.

The decision is a pure function of the epoch history (``decide``), so a search resumed after a kill
reaches the same decision at the same epoch, bit for bit: nothing but the history is needed.

``eigenvalue`` follows R-DARTS's DARTS-ES as their code runs it (automl/RobustDARTS,
``src/utils.py`` ``EVLocalAvg.update`` / ``early_stop`` and ``src/search/train_search.py``, with the
arguments of ``scripts/DARTS-ADA_search.sh``: ``--report_freq_hessian 2``, window 5, delta 4,
factor 1.3, es_start_epoch 10):
  * the dominant eigenvalue is computed every ``hessian_every`` epochs (the first epoch, then every
    ``hessian_every``-th; R-DARTS: ``epoch % report_freq_hessian == 0`` counted from 0);
  * after each one, once ceil(window / 2) exist, the local average of the last ``window`` of them (of
    all, while fewer than ``window``) is appended; it stands for the epoch
    ``e - hessian_every * floor(window / 2)`` (the window's centre);
  * the search stops when that centre minus ``hessian_every * delta`` epochs is at least
    ``start_epoch`` and the newest local average divided by the one ``delta`` averages earlier
    exceeds ``ratio``; it returns the architecture of the epoch ``centre - hessian_every * delta``;
  * never at the last epoch (the search ends anyway).
  The paper (sec. 4.3) states the same rule as "the ratio of the local average k epochs ago to now
  below 0.75"; the code's factor 1.3 (= 1 / 0.77) and delta 4 computations (8 epochs) are what ran.
  Epochs here count from 1, so R-DARTS's es_start_epoch 10 is ``start_epoch`` 11.

``param_free`` follows DARTS+ (Liang et al. 2019, criterion 1: stop once the normal cell holds two or
more skip connections), widened to every parameter-free op: the search stops at the first epoch from
``start_epoch`` on whose derived normal cell holds at least ``max_param_free`` of them, and keeps that
epoch's architecture.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

CRITERIA = ("none", "eigenvalue", "param_free")
DEFAULT_START = {"eigenvalue": 11, "param_free": 1}  # null start_epoch: the criterion's reference value


@dataclass(frozen=True)
class StopRule:
    """The ``search.early_stop`` section, with ``hessian_every`` from ``search.indicators``."""

    criterion: str = "none"
    window: int = 5
    delta: int = 4
    ratio: float = 1.3
    start_epoch: int | None = None
    max_param_free: int = 2
    hessian_every: int = 0

    @classmethod
    def from_search(cls, early_stop: dict[str, Any], indicators: dict[str, Any]) -> StopRule:
        return cls(**early_stop, hessian_every=int(indicators.get("hessian_every", 0)))

    @property
    def first_epoch(self) -> int:
        return self.start_epoch if self.start_epoch is not None else DEFAULT_START.get(self.criterion, 1)


@dataclass(frozen=True)
class StopDecision:
    """Where the rule fired, which epoch's architecture it keeps, and why (one line for the log and the audit)."""

    criterion: str
    fired_epoch: int
    chosen_epoch: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def hessian_due(epoch: int, epochs: int, every: int) -> bool:
    """Whether the 1-based ``epoch`` computes the eigenvalue: the first, every ``every``-th after it, and the last."""
    return every > 0 and ((epoch - 1) % every == 0 or epoch == epochs)


def _eigenvalue(rule: StopRule, history: Sequence[dict[str, Any]], epochs: int) -> StopDecision | None:
    evs: list[float] = []
    local: list[float] = []
    half_up, half_down = math.ceil(rule.window / 2), rule.window // 2
    for row in history:
        ev = row.get("hessian_eig")
        if ev is None:
            continue
        evs.append(float(ev))
        epoch = int(row["epoch"])
        if epoch >= epochs or len(evs) < half_up:
            continue
        window = evs[-rule.window:]
        local.append(sum(window) / len(window))
        centre = epoch - rule.hessian_every * half_down
        chosen = centre - rule.hessian_every * rule.delta
        if chosen < rule.first_epoch or len(local) <= rule.delta:
            continue
        now, before = local[-1], local[-1 - rule.delta]
        if before > 0 and now / before > rule.ratio:
            return StopDecision("eigenvalue", epoch, chosen,
                                f"local average of the Hessian eigenvalue {now:.4g} (epoch {centre}) / {before:.4g} "
                                f"({rule.delta} averages earlier) = {now / before:.3f} > search.early_stop.ratio "
                                f"{rule.ratio}")
    return None


def _param_free(rule: StopRule, history: Sequence[dict[str, Any]], epochs: int) -> StopDecision | None:
    for row in history:
        epoch, count = int(row["epoch"]), int(row["n_param_free_normal"])
        if epoch < rule.first_epoch or epoch >= epochs:
            continue
        if count >= rule.max_param_free:
            return StopDecision("param_free", epoch, epoch,
                                f"the derived normal cell holds {count} parameter-free ops >= "
                                f"search.early_stop.max_param_free {rule.max_param_free}")
    return None


def warmup_warning(rule: StopRule, arch_warmup_epochs: int) -> str | None:
    """A warning when the rule may keep an epoch of the weight warm-up, whose architecture is still the random start.

    Epochs 1..``arch_warmup_epochs`` take no architecture step, so an epoch kept from them derives the
    initial alpha; the collapse testbed with a warm-up (benchmarks/README section 3) kept exactly that
    in 22 of its 24 decisions. A warning, not an error: the decision stays the rule's, as documented."""
    if rule.criterion == "none" or arch_warmup_epochs <= 0 or rule.first_epoch > arch_warmup_epochs:
        return None
    start = "null (the criterion's reference value)" if rule.start_epoch is None else str(rule.start_epoch)
    return (f"search.early_stop.start_epoch = {start} resolves to epoch {rule.first_epoch}, within the "
            f"{arch_warmup_epochs} epochs of search.arch_warmup_epochs: a stop there keeps the untrained "
            f"architecture; expected start_epoch >= {arch_warmup_epochs + 1}")


def decide(rule: StopRule, history: Sequence[dict[str, Any]], epochs: int) -> StopDecision | None:
    """The first epoch of ``history`` at which ``rule`` stops a search of ``epochs`` epochs, or None."""
    if rule.criterion == "eigenvalue":
        return _eigenvalue(rule, history, epochs)
    if rule.criterion == "param_free":
        return _param_free(rule, history, epochs)
    return None
