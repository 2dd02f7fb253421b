"""The self-tuning's acceptance rule (podrec/recsys/tuning.py), on planted settings with exact NDCGs."""

import json

import pytest

from podrec.recsys.tuning import Setting, accept, serving_setting, sweep
from podrec.settings import AlsSettings, HybridSettings, TuningSettings

ALS, HYBRID = AlsSettings(), HybridSettings(cold_start="factor")
SERVING = Setting.of(ALS, HYBRID)  # alpha 40, regParam 0.08, rank 32, w_als 0.7, rerank 0.1
GRID = TuningSettings(
    alphas=[1.0, 40.0], reg_params=[0.08], ranks=[32], als_weights=[0.7], rerank_weights=[0.1]
)


class Planted:
    """A bench whose NDCG@10 per setting is planted: alpha 40 scores ``serving``, alpha 1 ``challenger``;
    re-ranking costs 1% of NDCG and adds diversity."""

    def __init__(self, serving: float, challenger: float) -> None:
        self.ndcg = {40.0: serving, 1.0: challenger}
        self.fits: list[float] = []

    def fit(self, als: AlsSettings) -> float:
        self.fits.append(als.alpha)
        return als.alpha

    def score(self, model: float, policy: str, hybrid: HybridSettings) -> dict[str, float | None]:
        assert policy == "hybrid"
        cost = 0.99 if hybrid.rerank_weight else 1.0
        return {"ndcg": self.ndcg[model] * cost, "diversity": 0.5 + hybrid.rerank_weight}


def test_accepted_only_beyond_the_margin() -> None:
    assert accept(0.400, 0.420, margin=0.02)  # 0.420 > 0.400·1.02 = 0.408
    assert not accept(0.400, 0.405, margin=0.02)  # better, but within the margin: no flapping
    assert not accept(0.400, 0.408, margin=0.02)  # exactly at the margin is not beyond it
    assert not accept(0.400, 0.390, margin=0.02)


def test_a_planted_better_setting_is_accepted() -> None:
    bench = Planted(serving=0.400, challenger=0.440)
    decision = sweep(bench, ALS, HYBRID, SERVING, GRID)
    assert bench.fits == [40.0, 1.0]  # the serving setting, then the grid without it
    # challenger: alpha 1, w_als 0.7, rerank 0.1 (within 2% of none, more diverse): 0.44·0.99 = 0.4356
    # serving: alpha 40 with its rerank 0.1: 0.40·0.99 = 0.396; 0.4356 > 0.396·1.02 = 0.40392
    assert decision.accepted
    assert decision.challenger == Setting(1.0, 0.08, 32, 0.7, 0.1)
    assert (decision.incumbent_ndcg, decision.challenger_ndcg) == pytest.approx((0.396, 0.4356))
    assert decision.serving == decision.challenger
    assert decision.reason.startswith("accepted alpha 1, regParam 0.08, rank 32, w_als 0.7, rerank 0.1")


def test_a_planted_worse_setting_is_not() -> None:
    decision = sweep(Planted(serving=0.400, challenger=0.380), ALS, HYBRID, SERVING, GRID)
    # the best ALS stays alpha 40; its lists at w_als 0.7 and rerank 0.1 are the serving setting itself
    assert not decision.accepted and decision.serving == SERVING
    assert decision.challenger == SERVING and decision.challenger_ndcg == pytest.approx(0.396)
    assert decision.reason.startswith("kept alpha 40")


def test_a_slightly_better_setting_does_not_replace_the_serving_one() -> None:
    decision = sweep(Planted(serving=0.400, challenger=0.405), ALS, HYBRID, SERVING, GRID)
    # 0.405·0.99 = 0.40095 ≤ 0.396·1.02 = 0.40392: within the margin
    assert not decision.accepted and decision.serving == SERVING
    assert decision.challenger == Setting(1.0, 0.08, 32, 0.7, 0.1)
    assert "within the 2% margin" in decision.reason


def test_the_newest_decision_serves_unless_pinned() -> None:
    row = {
        "serving": Setting(1.0, 0.3, 64, 0.9, 0.2).to_json(),
        "tuned_date": "2026-11-16",
        "reason": "accepted …",
    }
    als, hybrid, why = serving_setting(ALS, HYBRID, TuningSettings(), row)
    assert (als.alpha, als.reg_param, als.rank, hybrid.als_weight, hybrid.rerank_weight) == (
        1,
        0.3,
        64,
        0.9,
        0.2,
    )
    assert why == "gold.tuning of 2026-11-16: accepted …"
    assert als.window_days == ALS.window_days  # only the tuned knobs change
    pinned = serving_setting(ALS, HYBRID, TuningSettings(pin=True), row)
    assert pinned[:2] == (ALS, HYBRID) and pinned[2].startswith("pinned")
    assert serving_setting(ALS, HYBRID, TuningSettings(), None)[:2] == (ALS, HYBRID)
    assert json.loads(row["serving"])["rank"] == 64
