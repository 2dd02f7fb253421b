"""The model tunes itself (docs/design.md, ALS: a weekly tuning asset may accept a better setting by a
stated rule, and a setting can pin one).

Each week ``gold/tuning`` sweeps what shapes the lists — ALS alpha, regParam and rank, the hybrid's
w_als, the re-ranking weight — on the held-out days of the time split (``sweep``), and measures the
setting serving now on the same split. The rule (``accept``): the best challenger serves only if its
NDCG@K beats the serving setting's by more than ``tuning.margin`` (relative, 2% by default). A
setting that is merely as good never replaces the serving one, so week-to-week noise cannot make
the setting flap. The decision, with both measurements and every trial, is a row of ``gold.tuning``;
``serving_setting`` reads the newest one for the daily fit, the lists and the evaluation — unless
``tuning.pin`` holds the settings as written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from itertools import product
from typing import Any, Protocol

from podrec.recsys.evaluation import choose_rerank_weight
from podrec.settings import AlsSettings, HybridSettings, TuningSettings


@dataclass(frozen=True)
class Setting:
    """The tuned knobs, under their settings names."""

    alpha: float
    reg_param: float
    rank: int
    als_weight: float
    rerank_weight: float

    @classmethod
    def of(cls, als: AlsSettings, hybrid: HybridSettings) -> Setting:
        return cls(als.alpha, als.reg_param, als.rank, hybrid.als_weight, hybrid.rerank_weight)

    @classmethod
    def from_json(cls, text: str) -> Setting:
        return cls(**json.loads(text))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def apply(self, als: AlsSettings, hybrid: HybridSettings) -> tuple[AlsSettings, HybridSettings]:
        """``als`` and ``hybrid`` with this setting's knobs (validated like any setting)."""
        return (
            als.updated(alpha=self.alpha, reg_param=self.reg_param, rank=self.rank),
            hybrid.updated(als_weight=self.als_weight, rerank_weight=self.rerank_weight),
        )

    def label(self) -> str:
        return (
            f"alpha {self.alpha:g}, regParam {self.reg_param:g}, rank {self.rank}, "
            f"w_als {self.als_weight:g}, rerank {self.rerank_weight:g}"
        )


def accept(serving_ndcg: float, challenger_ndcg: float, margin: float) -> bool:
    """The acceptance rule: the challenger must beat the serving setting's NDCG@K by more than
    ``margin`` (relative), both measured on the same held-out days."""
    return challenger_ndcg > serving_ndcg * (1.0 + margin)


@dataclass
class Decision:
    """One week's tuning: who served, the best challenger, both NDCG@K, and what serves next."""

    incumbent: Setting
    challenger: Setting
    incumbent_ndcg: float
    challenger_ndcg: float
    accepted: bool
    reason: str
    trials: list[dict[str, Any]] = field(default_factory=list)

    @property
    def serving(self) -> Setting:
        return self.challenger if self.accepted else self.incumbent


def decide(
    incumbent: Setting,
    incumbent_ndcg: float,
    challenger: Setting,
    challenger_ndcg: float,
    margin: float,
    k: int,
    trials: list[dict[str, Any]] | None = None,
) -> Decision:
    """Apply ``accept`` and say why, in words the Dagster UI shows."""
    accepted = challenger != incumbent and accept(incumbent_ndcg, challenger_ndcg, margin)
    gain = (challenger_ndcg / incumbent_ndcg - 1.0) if incumbent_ndcg > 0 else float("inf")
    versus = f"NDCG@{k} {challenger_ndcg:.4f} vs the serving {incumbent_ndcg:.4f} ({gain:+.1%})"
    if accepted:
        reason = f"accepted {challenger.label()}: {versus}, beyond the {margin:.0%} margin"
    elif challenger == incumbent:
        reason = f"kept {incumbent.label()}: nothing in the sweep did better (NDCG@{k} {incumbent_ndcg:.4f})"
    else:
        reason = (
            f"kept {incumbent.label()}: the best challenger ({challenger.label()}) has {versus}, "
            f"within the {margin:.0%} margin"
        )
    return Decision(incumbent, challenger, incumbent_ndcg, challenger_ndcg, accepted, reason, trials or [])


class Bench(Protocol):
    """What a sweep needs from an evaluation split: ``podrec.recsys.evaluation.Bench``, built at
    ``tuning.k`` (a unit test plants its own)."""

    def fit(self, als: AlsSettings) -> Any: ...

    def score(self, model: Any, policy: str, hybrid: HybridSettings) -> dict[str, float | None]: ...


def sweep(
    bench: Bench, als: AlsSettings, hybrid: HybridSettings, serving: Setting, grid: TuningSettings
) -> Decision:
    """Measure ``serving`` and the grid on one split, then ``decide``.

    Three stages, so the cost is one fit per ALS setting rather than one per combination: (1) every
    (alpha, regParam, rank) with the serving list knobs; (2) every w_als on the best fit, without
    re-ranking; (3) the re-ranking weights on that, the weight chosen by the evaluation's rule (the
    most diverse within 2% NDCG of none). ``hybrid`` must have a concrete cold-start strategy.
    """
    trials: list[dict[str, Any]] = []

    def trial(stage: str, setting: Setting, scores: Mapping[str, float | None]) -> float:
        ndcg = float(scores["ndcg"] or 0.0)
        trials.append({"stage": stage, **asdict(setting), "ndcg": ndcg, "diversity": scores.get("diversity")})
        return ndcg

    serving_als, serving_hybrid = serving.apply(als, hybrid)
    serving_model = bench.fit(serving_als)
    serving_ndcg = trial("serving", serving, bench.score(serving_model, "hybrid", serving_hybrid))

    best_ndcg, best_als, best_model = serving_ndcg, serving_als, serving_model
    for alpha, reg_param, rank in product(grid.alphas, grid.reg_params, grid.ranks):
        candidate = als.updated(alpha=alpha, reg_param=reg_param, rank=rank)
        if (alpha, reg_param, rank) == (serving.alpha, serving.reg_param, serving.rank):
            continue
        model = bench.fit(candidate)
        setting = Setting(alpha, reg_param, rank, serving.als_weight, serving.rerank_weight)
        ndcg = trial("als", setting, bench.score(model, "hybrid", serving_hybrid))
        if ndcg > best_ndcg:
            best_ndcg, best_als, best_model = ndcg, candidate, model

    by_weight = {}
    for weight in grid.als_weights:
        setting = Setting(best_als.alpha, best_als.reg_param, best_als.rank, weight, 0.0)
        scores = bench.score(best_model, "hybrid", setting.apply(als, hybrid)[1])
        by_weight[weight] = trial("als_weight", setting, scores)
    als_weight = max(by_weight, key=lambda w: (by_weight[w], -abs(w - serving.als_weight)))

    tradeoff = {}
    for weight in sorted({0.0, *grid.rerank_weights}):
        setting = Setting(best_als.alpha, best_als.reg_param, best_als.rank, als_weight, weight)
        scores = bench.score(best_model, "hybrid", setting.apply(als, hybrid)[1])
        trial("rerank", setting, scores)
        tradeoff[weight] = scores
    rerank = choose_rerank_weight(tradeoff) or 0.0
    challenger = Setting(best_als.alpha, best_als.reg_param, best_als.rank, als_weight, rerank)
    challenger_ndcg = float(tradeoff[rerank]["ndcg"] or 0.0)
    return decide(serving, serving_ndcg, challenger, challenger_ndcg, grid.margin, grid.k, trials)


def serving_setting(
    als: AlsSettings, hybrid: HybridSettings, tuning: TuningSettings, latest: Mapping[str, Any] | None
) -> tuple[AlsSettings, HybridSettings, str]:
    """The setting the day's fit and lists use, and why: the newest ``gold.tuning`` decision
    (``latest``: its row), or the settings as written when pinned or before any tuning."""
    if tuning.pin:
        return als, hybrid, "pinned (PODREC_TUNING_PIN): the settings as written"
    if latest is None:
        return als, hybrid, "the settings as written: no tuning decision yet"
    tuned_als, tuned_hybrid = Setting.from_json(latest["serving"]).apply(als, hybrid)
    return tuned_als, tuned_hybrid, f"gold.tuning of {latest['tuned_date']}: {latest['reason']}"
