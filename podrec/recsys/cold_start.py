"""Which cold-start strategy serves (docs/design.md, Cold start): the rule, and reading it off an evaluation.

The default is the strategy with the highest new-episode recall among those losing at most 2%
NDCG@K against ``als_only``. ``auto`` applies that rule to the newest evaluation; a configured
strategy is served as it is.
"""

from __future__ import annotations

import pandas as pd

NDCG_TOLERANCE = 0.02  # a cold-start strategy may cost at most 2% NDCG@K against als_only
# How far back ``auto`` looks for an evaluation: the weekly one, plus a day of slack for a late tick.
EVALUATION_LOOKBACK_DAYS = 8


def choose_cold_start(strategies: dict[str, dict[str, float | None]], als_ndcg: float | None) -> str | None:
    """The highest new-episode recall among strategies within ``NDCG_TOLERANCE`` of als_only's NDCG."""
    if als_ndcg is None:
        return None
    eligible = [
        (v["cold_recall"] or 0.0, v["ndcg"] or 0.0, s)
        for s, v in strategies.items()
        if (v["ndcg"] or 0.0) >= (1 - NDCG_TOLERANCE) * als_ndcg
    ]
    return max(eligible)[2] if eligible else None


def strategy_from_evaluation(configured: str, evaluation: pd.DataFrame | None) -> tuple[str, str]:
    """(strategy, why): the configured one, or for ``auto`` the rule applied to the newest evaluation
    in ``evaluation`` (gold.evaluation rows of the lookback, sweeps left out; the time protocol
    preferred), ``factor`` while there is none."""
    if configured != "auto":
        return configured, "configured"
    if evaluation is None or evaluation.empty:
        return "factor", f"auto: no evaluation in the last {EVALUATION_LOOKBACK_DAYS} days"
    latest = evaluation[evaluation["eval_date"] == evaluation["eval_date"].max()]
    protocol = "time" if (latest["protocol"] == "time").any() else latest["protocol"].iloc[0]
    latest = latest[latest["protocol"] == protocol]
    values = {(r.policy, r.cold_start, r.metric): r.value for r in latest.itertuples()}
    strategies = {
        s: {
            "ndcg": values.get(("hybrid", s, "ndcg")),
            "cold_recall": values.get(("hybrid", s, "cold_recall")),
        }
        for s in {c for p, c, _ in values if p == "hybrid"}
    }
    als_ndcg = next((v for (p, _, m), v in values.items() if p == "als_only" and m == "ndcg"), None)
    chosen = choose_cold_start(strategies, als_ndcg)
    if chosen is None:
        return "factor", "auto: no strategy qualified"
    return chosen, f"auto: {protocol} evaluation of {latest['eval_date'].iloc[0]}"
