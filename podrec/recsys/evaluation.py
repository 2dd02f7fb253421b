"""Offline evaluation (DESIGN.md, Evaluation): every policy on a held-out split, at K.

Two protocols over daily engagement — ``time`` (train before a cutoff date, test after) and
``stratified`` (per user, a seeded random 75/25 of their episodes) — plus a share of episodes
held out as *new* (their training interactions removed), so cold-start recall is measured on
any data, simulated or imported. The lists come from ``podrec.recsys.hybrid.recommend_block``, the
function that serves, with everything in a user's training data excluded as published
protocols do.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from podrec.recsys import metrics
from podrec.recsys.als import ItemFactors, fit
from podrec.recsys.cold_start import choose_cold_start
from podrec.recsys.engagement import COMPLETED_AT
from podrec.recsys.hybrid import ItemSide, with_cold_start
from podrec.recsys.scoring import build_episode_index, episode_stats, recommend_local, user_frame
from podrec.recsys.window import in_window
from podrec.settings import COLD_START_STRATEGIES, AbSettings, AlsSettings, HybridSettings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession

PROTOCOLS = ("time", "stratified")
BASELINES = ("als_only", "content_only", "popular", "random")
METRICS = (
    "precision", "recall", "ndcg", "map", "hit_rate", "coverage", "novelty", "diversity", "cold_recall",
)  # fmt: skip


TRAIN_COLUMNS = {
    "user_id": "user_id string", "episode_id": "episode_id string", "rating": "rating double",
    "completed": "completed boolean", "locale": "locale string",
}  # fmt: skip


class EvaluationError(ValueError):
    """The data cannot support the requested protocol; the message says why."""


@dataclass
class Split:
    train: pd.DataFrame  # per (user, episode): rating, completed, locale
    test: dict[str, set[str]]  # user → episodes they engaged with positively in the test part
    cold_items: set[str]  # test episodes with no training interaction


@dataclass
class EvaluationResult:
    protocol: str
    k: int
    users: int
    items: int
    cold_items: int
    als: dict[str, Any]
    policies: dict[str, dict[str, float | None]]
    cold_start: dict[str, dict[str, float | None]]
    recommended_cold_start: str | None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def rows(self) -> list[tuple[str, str, str, float | None]]:
        """(policy, cold_start, metric, value) for gold.evaluation."""
        out = []
        for policy, values in self.policies.items():
            strategy = self.cold_start_default if policy == "hybrid" else "-"
            out += [(policy, strategy, m, v) for m, v in values.items()]
        for strategy, values in self.cold_start.items():
            if strategy != self.cold_start_default:  # the default's rows are hybrid's own
                out += [("hybrid", strategy, m, v) for m, v in values.items()]
        return out

    def table_rows(self, now: datetime, day: date, tuned: bool = False) -> list[tuple]:
        """``gold.evaluation`` rows; ``params`` records the ALS setting and whether it was a sweep's."""
        params = json.dumps({**self.als, "tuning": tuned})
        return [
            (self.protocol, policy, strategy, metric, self.k, value, self.users, params, now, day)
            for policy, strategy, metric, value in self.rows()
        ]

    @property
    def cold_start_default(self) -> str:
        return str(self.als.get("cold_start", "factor"))


def evaluation_rows(engagement: SparkFrame, day: date, window_days: int, max_users: int) -> SparkFrame:
    """The daily engagement an evaluation as of ``day`` reads: the ``window_days`` ending on it (all of
    it when 0), of at most about ``max_users`` listeners — a stable hash sample, the same listeners
    every week — so its cost is bounded whatever the history."""
    from pyspark.sql import functions as F

    rows = engagement.where(
        in_window("event_date", day, window_days) if window_days else F.col("event_date") <= F.lit(day)
    ).select("user_id", "episode_id", "event_date", "engagement", "max_completion", "locale")
    listeners = rows.select("user_id").distinct().count()
    if listeners > max_users:
        share = max_users / listeners
        rows = rows.where(F.pmod(F.xxhash64("user_id"), F.lit(1_000_000)) < F.lit(int(share * 1_000_000)))
    return rows


def _aggregate(daily: pd.DataFrame) -> pd.DataFrame:
    """Daily engagement → one row per (user, episode): summed rating, ever completed, last locale."""
    ordered = daily.sort_values("event_date")
    return (
        ordered.groupby(["user_id", "episode_id"], as_index=False)
        .agg(
            rating=("engagement", "sum"), max_completion=("max_completion", "max"), locale=("locale", "last")
        )
        .assign(completed=lambda d: d["max_completion"] >= COMPLETED_AT)
        .drop(columns="max_completion")
    )


def split_train_test(
    daily: pd.DataFrame,
    protocol: str,
    seed: int = 42,
    test_fraction: float = 0.25,
    time_train_fraction: float = 0.8,
    cold_fraction: float = 0.1,
) -> Split:
    """Train/test by protocol, then hold out ``cold_fraction`` of the test episodes as new."""
    if protocol not in PROTOCOLS:
        raise EvaluationError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if daily.empty:
        raise EvaluationError("no engagement to evaluate on: ingest events first")
    if protocol == "time":
        dates = daily.groupby("event_date").size().sort_index()
        if len(dates) < 2:
            raise EvaluationError("the time protocol needs events on at least two days")
        share = dates.cumsum() / dates.sum()
        cutoff = share.index[
            min(int(np.searchsorted(share.to_numpy(), time_train_fraction)) + 1, len(dates) - 1)
        ]
        train = _aggregate(daily[daily["event_date"] < cutoff])
        later = _aggregate(daily[daily["event_date"] >= cutoff])
        seen = set(zip(train["user_id"], train["episode_id"], strict=True))
        test_rows = later[
            (later["rating"] > 0)
            & later["user_id"].isin(set(train["user_id"]))
            & np.array(
                [(u, e) not in seen for u, e in zip(later["user_id"], later["episode_id"], strict=True)]
            )
        ]
    else:
        pairs = _aggregate(daily)
        rng = np.random.default_rng(seed)
        draw = pd.Series(rng.random(len(pairs)), index=pairs.index)
        # Per user, the 25% of their episodes with the smallest draws (at least one, never all).
        order = draw.groupby(pairs["user_id"]).rank(method="first")
        size = pairs.groupby("user_id")["episode_id"].transform("size")
        n_test = np.where(size >= 2, np.maximum(1, np.round(size * test_fraction)), 0)
        is_test = order <= n_test
        train, test_rows = pairs[~is_test], pairs[is_test & (pairs["rating"] > 0)]
    test_items = sorted(set(test_rows["episode_id"]))
    rng_items = random.Random(seed)
    held_out = set(rng_items.sample(test_items, round(len(test_items) * cold_fraction)))
    train = train[~train["episode_id"].isin(held_out)]
    cold = set(test_items) - set(train["episode_id"])
    test: dict[str, set[str]] = {}
    for user, episode in zip(test_rows["user_id"], test_rows["episode_id"], strict=True):
        test.setdefault(user, set()).add(episode)
    test = {u: items for u, items in test.items() if u in set(train["user_id"])}
    if not test:
        raise EvaluationError("the split left no user with both training and test interactions")
    return Split(train=train.reset_index(drop=True), test=test, cold_items=cold)


def score_lists(
    lists: dict[str, list[str]],
    split_: Split,
    k: int,
    catalog_size: int,
    vectors: dict[str, np.ndarray],
) -> dict[str, float | None]:
    """Every metric of one policy's lists against the split's test part."""
    users = sorted(split_.test)
    per_user = {
        name: float(np.mean([fn(lists.get(u, []), split_.test[u], k) for u in users]))
        for name, fn in (
            ("precision", metrics.precision_at_k), ("recall", metrics.recall_at_k),
            ("ndcg", metrics.ndcg_at_k), ("map", metrics.average_precision_at_k),
            ("hit_rate", metrics.hit_at_k),
        )
    }  # fmt: skip
    listeners = split_.train[split_.train["rating"] > 0].groupby("episode_id")["user_id"].nunique().to_dict()
    shown = [lists.get(u, []) for u in users]
    diversity = [d for items in shown if (d := metrics.intra_list_diversity(items, vectors)) is not None]
    cold_users = [u for u in users if split_.test[u] & split_.cold_items]
    cold_recall = (
        float(
            np.mean(
                [
                    metrics.recall_at_k(lists.get(u, []), split_.test[u] & split_.cold_items, k)
                    for u in cold_users
                ]
            )
        )
        if cold_users
        else None
    )
    return {
        **per_user,
        "coverage": metrics.catalog_coverage(shown, catalog_size),
        "novelty": metrics.novelty(shown, listeners, split_.train["user_id"].nunique()),
        "diversity": float(np.mean(diversity)) if diversity else None,
        "cold_recall": cold_recall,
    }


def evaluate(
    spark: SparkSession,
    daily: pd.DataFrame,
    protocol: str,
    k: int,
    als: AlsSettings,
    hybrid: HybridSettings,
    episodes: pd.DataFrame | None = None,
    similarity: pd.DataFrame | None = None,
    embeddings: dict[str, np.ndarray] | None = None,
    policies: tuple[str, ...] = BASELINES,
    strategies: tuple[str, ...] = COLD_START_STRATEGIES,
    seed: int = 42,
) -> EvaluationResult:
    """Fit ALS on the training part, then list and score every policy and cold-start strategy."""
    split_ = split_train_test(daily, protocol, seed=seed)
    rows = split_.train[list(TRAIN_COLUMNS)]
    rows = rows.assign(locale=rows["locale"].astype(object).where(rows["locale"].notna(), None))
    train = spark.createDataFrame(rows, ", ".join(TRAIN_COLUMNS.values())).persist()
    fitted = fit(train.select("user_id", "episode_id", "rating"), als)
    index = build_episode_index(episode_stats(train), episodes, similarity)
    learned = ItemFactors.collect(fitted.item_factors(), "episode_id").aligned(index.ids)
    vectors = embeddings or {e: learned[i] for i, e in enumerate(index.ids) if np.abs(learned[i]).sum() > 0}
    users = sorted(split_.test)
    has_content = index.similarity.nnz > 0
    notes = (
        [] if has_content else ["no content similarity for these episodes: content-based scores are empty"]
    )

    # The warm start and the users' frame do not depend on the policy or strategy: built once.
    hybrid = with_cold_start(hybrid).updated(k=k)
    base = ItemSide.build(index, learned, hybrid)
    # The test users' frames, built by the same Spark code as the daily lists (bounded: an evaluation).
    built = user_frame(train, index, fitted.user_factors(), AbSettings(), exclude="seen").toPandas()
    frame = built[built["user_id"].isin(set(users))].sort_values("user_id").reset_index(drop=True)
    train.unpersist()

    def lists_for(policy: str, strategy: str) -> dict[str, list[str]]:
        items = replace(base, params=base.params.updated(cold_start=strategy))
        out = recommend_local(frame.assign(policy=policy), items)
        return {u: g.sort_values("rank")["episode_id"].tolist() for u, g in out.groupby("user_id")}

    def scored(policy: str, strategy: str) -> dict[str, float | None]:
        return score_lists(lists_for(policy, strategy), split_, k, len(index), vectors)

    results = {"hybrid": scored("hybrid", hybrid.cold_start)}
    for policy in policies:
        if policy == "content_only" and not has_content:
            results[policy] = dict.fromkeys(METRICS)
            continue
        results[policy] = scored(policy, hybrid.cold_start)
    by_strategy = {hybrid.cold_start: results["hybrid"]}
    for strategy in strategies:
        if strategy not in by_strategy:
            by_strategy[strategy] = scored("hybrid", strategy)
    cold_start = {s: {"ndcg": v["ndcg"], "cold_recall": v["cold_recall"]} for s, v in by_strategy.items()}
    return EvaluationResult(
        protocol=protocol, k=k, users=len(users), items=len(index), cold_items=len(split_.cold_items),
        als={**als.model_dump(), "cold_start": hybrid.cold_start}, policies=results, cold_start=cold_start,
        recommended_cold_start=choose_cold_start(cold_start, results.get("als_only", {}).get("ndcg")),
        notes=notes,
    )  # fmt: skip


def sweep(
    spark: SparkSession,
    daily: pd.DataFrame,
    protocol: str,
    k: int,
    base: AlsSettings,
    hybrid: HybridSettings,
    episodes: pd.DataFrame | None,
    similarity: pd.DataFrame | None,
    alphas: list[float],
    reg_params: list[float],
    ranks: list[int],
) -> list[EvaluationResult]:
    """The evaluation of every (alpha, regParam, rank) in the grid on one split.

    The right alpha depends on the data (on a public ratings benchmark alpha=1 beat alpha=40 by
    a wide margin), so it is measured, not assumed. Only ALS-driven policies are re-scored.
    """
    results = []
    for alpha in alphas:
        for reg_param in reg_params:
            for rank in ranks:
                params = base.updated(alpha=alpha, reg_param=reg_param, rank=rank)
                results.append(
                    evaluate(
                        spark,
                        daily,
                        protocol,
                        k,
                        params,
                        hybrid,
                        episodes,
                        similarity,
                        policies=("als_only",),
                    )
                )
    return results


def summary_markdown(reports: dict[str, dict[str, Any]]) -> str:
    """NDCG, recall and cold-start recall per protocol and policy, as a markdown table."""

    def fmt(value: float | None) -> str:
        return "" if value is None else f"{value:.4f}"

    rows = "\n".join(
        f"| {protocol} | {policy} | {fmt(v['ndcg'])} | {fmt(v['recall'])} | {fmt(v['cold_recall'])} |"
        for protocol, report in reports.items()
        for policy, v in report["policies"].items()
        if v["ndcg"] is not None
    )
    return "| protocol | policy | NDCG@K | recall@K | cold recall |\n|---|---|---|---|---|\n" + rows
