"""Offline evaluation (docs/design.md, Evaluation): every policy on a held-out split, at K.

Three protocols over daily engagement:
- ``time``: train before the day where 80% of interactions are behind, test after (the positive
  engagement of listeners seen in training, with episodes new to them);
- ``stratified``: per listener a seeded 75/25 of their episodes, the positive held-out ones relevant;
- ``published``: the protocol of the published MovieLens tables (Microsoft Recommenders'
  ``python_stratified_split``): per listener a seeded 75/25 of *all* their interactions, every
  held-out interaction relevant whatever its rating, nothing held out as new.
``time`` and ``stratified`` (podrec's own) also hold out 10% of the test episodes as *new* (the
training interactions of every variant removed) for cold-start recall, and half of the test episodes
that are language variants of an episode still in training as *new variants* (their own training
interactions removed): the day a translation appears. The lists come from
``podrec.recsys.hybrid.recommend_block``, the function that serves, with everything in a listener's
training data excluded, as published protocols do.

Besides the policies it reports the hybrid without the followed-show source and the re-ranking's
trade-off (NDCG, intra-list diversity, category calibration error) for a few weights, with the
weight DESIGN-style rule picks (``choose_rerank_weight``).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from podrec.recsys import metrics
from podrec.recsys.als import ItemFactors, fit, pool_variants
from podrec.recsys.cold_start import choose_cold_start
from podrec.recsys.engagement import COMPLETED_AT
from podrec.recsys.hybrid import EpisodeIndex, ItemSide, with_cold_start
from podrec.recsys.scoring import build_episode_index, episode_stats, recommend_local, user_frame
from podrec.recsys.window import in_window
from podrec.settings import COLD_START_STRATEGIES, AbSettings, AlsSettings, HybridSettings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession

PROTOCOLS = ("time", "stratified", "published")
DEFAULT_PROTOCOLS = ("time", "stratified")  # podrec's own; ``published`` is asked for by name
BASELINES = ("als_only", "content_only", "popular", "random")
METRICS = (
    "precision", "recall", "ndcg", "map", "hit_rate", "coverage", "novelty", "diversity", "cold_recall",
    "new_variant_recall", "calibration",
)  # fmt: skip
RERANK_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5)
RERANK_NDCG_TOLERANCE = 0.02  # the re-ranking may cost at most 2% NDCG@K against none
CALIBRATION_SMOOTHING = 0.01  # Steck's a: the list's category mix is q̃ = (1 - a)·q + a·p


TRAIN_COLUMNS = {
    "user_id": "user_id string", "episode_id": "episode_id string", "rating": "rating double",
    "completed": "completed boolean", "locale": "locale string",
}  # fmt: skip


class EvaluationError(ValueError):
    """The data cannot support the requested protocol; the message says why."""


@dataclass
class Split:
    train: pd.DataFrame  # per (user, episode): rating, completed, locale
    test: dict[str, set[str]]  # user → episodes relevant in the test part
    cold_items: set[str]  # test episodes none of whose variants has a training interaction
    new_variants: set[str] = field(default_factory=set)  # test episodes new while a variant is known


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
    new_variants: int = 0
    hybrid: dict[str, Any] = field(default_factory=dict)  # the list knobs the hybrid was evaluated with
    ablations: dict[str, dict[str, float | None]] = field(default_factory=dict)  # e.g. no_follow
    rerank: dict[str, dict[str, float | None]] = field(default_factory=dict)  # weight → trade-off
    recommended_rerank_weight: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def rows(self) -> list[tuple[str, str, str, float | None]]:
        """(policy, cold_start, metric, value) for gold.evaluation; the ablations and the re-ranking's
        trade-off under policies of their own (``hybrid:no_follow``, ``hybrid:rerank=0.2``)."""
        out = []
        for policy, values in self.policies.items():
            strategy = self.cold_start_default if policy == "hybrid" else "-"
            out += [(policy, strategy, m, v) for m, v in values.items()]
        for strategy, values in self.cold_start.items():
            if strategy != self.cold_start_default:  # the default's rows are hybrid's own
                out += [("hybrid", strategy, m, v) for m, v in values.items()]
        for name, values in self.ablations.items():
            out += [(f"hybrid:{name}", "-", m, v) for m, v in values.items()]
        for weight, values in self.rerank.items():
            out += [(f"hybrid:rerank={weight}", "-", m, v) for m, v in values.items()]
        return out

    def table_rows(self, now: datetime, day: date) -> list[tuple]:
        """``gold.evaluation`` rows; ``params`` records the ALS setting and the hybrid's list knobs."""
        params = json.dumps({**self.als, **self.hybrid})
        return [
            (self.protocol, policy, strategy, metric, self.k, value, self.users, params, now, day)
            for policy, strategy, metric, value in self.rows()
        ]

    @property
    def cold_start_default(self) -> str:
        return str(self.als.get("cold_start", "factor"))


def choose_rerank_weight(tradeoff: Mapping[float, Mapping[str, float | None]]) -> float | None:
    """The re-ranking rule: the highest intra-list diversity among weights losing at most
    ``RERANK_NDCG_TOLERANCE`` NDCG@K against no re-ranking (weight 0); ties go to the smaller weight.
    None without a weight-0 line; 0 when diversity cannot be measured."""
    if 0.0 not in tradeoff or tradeoff[0.0]["ndcg"] is None:
        return None
    floor = (1 - RERANK_NDCG_TOLERANCE) * float(tradeoff[0.0]["ndcg"])
    eligible = [
        (float(v["diversity"] or 0.0), -w) for w, v in tradeoff.items() if (v["ndcg"] or 0.0) >= floor
    ]
    return -max(eligible)[1]


def category_miscalibration(
    recommended: list[str], profile: Mapping[str, float], categories: Mapping[str, tuple[str, ...]]
) -> float | None:
    """Steck's calibration error of one list: KL(p ‖ q̃), p the listener's category mix (their
    training history), q the list's, q̃ = (1 - a)·q + a·p with a = ``CALIBRATION_SMOOTHING``. Each
    episode spreads one unit evenly over its categories. 0: the list mirrors their mix; None when
    the listener or the list has no category. It says whether a diversified list still fits them."""
    q = _category_mix(recommended, categories)
    if not profile or not q:
        return None
    a = CALIBRATION_SMOOTHING
    return float(
        sum(pc * np.log(pc / ((1 - a) * q.get(c, 0.0) + a * pc)) for c, pc in profile.items() if pc > 0)
    )


def _category_mix(episodes: list[str], categories: Mapping[str, tuple[str, ...]]) -> dict[str, float]:
    mix: Counter[str] = Counter()
    for episode in episodes:
        cats = categories.get(episode) or ()
        for c in cats:
            mix[c] += 1.0 / len(cats)
    total = sum(mix.values())
    return {c: v / total for c, v in mix.items()} if total else {}


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
    canonical: Mapping[str, str] | None = None,
    variant_fraction: float = 0.5,
) -> Split:
    """Train/test by protocol; then (podrec's protocols) hold out ``cold_fraction`` of the test
    episodes as new, with all their variants, and ``variant_fraction`` of the test episodes whose
    canonical episode keeps another variant in training as new variants (one per canonical episode).
    ``canonical``: episode → canonical episode (missing: its own)."""
    if protocol not in PROTOCOLS:
        raise EvaluationError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if daily.empty:
        raise EvaluationError("no engagement to evaluate on: ingest events first")
    groups = canonical or {}
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
        train = pairs[~is_test]
        # The published protocol counts every held-out interaction; podrec's, the positive ones.
        test_rows = pairs[is_test] if protocol == "published" else pairs[is_test & (pairs["rating"] > 0)]
    test_items = sorted(set(test_rows["episode_id"]))
    if protocol != "published":
        rng_items = random.Random(seed)
        held_out = {
            groups.get(e, e) for e in rng_items.sample(test_items, round(len(test_items) * cold_fraction))
        }
        train = train[~train["episode_id"].map(lambda e: groups.get(e, e)).isin(held_out)]
        train = train[
            ~train["episode_id"].isin(_new_variants(train, test_items, groups, variant_fraction, seed))
        ]
    trained = set(train["episode_id"])
    trained_groups = {groups.get(e, e) for e in trained}
    cold, new_variants = set(), set()
    if protocol != "published":
        cold = {e for e in test_items if groups.get(e, e) not in trained_groups}
        new_variants = {e for e in test_items if e not in trained and groups.get(e, e) in trained_groups}
    test: dict[str, set[str]] = {}
    for user, episode in zip(test_rows["user_id"], test_rows["episode_id"], strict=True):
        test.setdefault(user, set()).add(episode)
    trained_users = set(train["user_id"])
    test = {u: items for u, items in test.items() if u in trained_users}
    if not test:
        raise EvaluationError("the split left no user with both training and test interactions")
    return Split(train=train.reset_index(drop=True), test=test, cold_items=cold, new_variants=new_variants)


def _new_variants(
    train: pd.DataFrame, test_items: list[str], groups: Mapping[str, str], fraction: float, seed: int
) -> set[str]:
    """Test episodes to hold out as new translations: each has training interactions, and so does
    another variant of its canonical episode, which keeps them (at most one per canonical episode)."""
    trained = set(train["episode_id"])
    variants_trained = Counter(groups.get(e, e) for e in trained)
    eligible = [e for e in test_items if e in trained and variants_trained[groups.get(e, e)] >= 2]
    chosen: dict[str, str] = {}
    for episode in random.Random(seed + 1).sample(eligible, round(len(eligible) * fraction)):
        chosen.setdefault(groups.get(episode, episode), episode)
    return set(chosen.values())


def _recall_on(
    lists: dict[str, list[str]], split_: Split, users: list[str], items: set[str], k: int
) -> float | None:
    """Mean recall@K over the listeners with a test episode in ``items``, of those episodes only."""
    who = [u for u in users if split_.test[u] & items]
    if not who:
        return None
    return float(np.mean([metrics.recall_at_k(lists.get(u, []), split_.test[u] & items, k) for u in who]))


@dataclass
class Model:
    """One ALS fit on a split's training part: the item side's factors and the test users'."""

    als: AlsSettings
    learned: np.ndarray  # aligned with the bench's EpisodeIndex
    user_factors: dict[str, list[float]]


class Bench:
    """A split and everything about it that no model changes — the item side, the test listeners'
    histories and exclusions, the vectors diversity is measured with, the category mixes — so an
    evaluation or a tuning sweep fits and lists many times and builds these once."""

    def __init__(
        self,
        spark: SparkSession,
        split_: Split,
        k: int,
        episodes: pd.DataFrame | None = None,
        similarity: pd.DataFrame | None = None,
        embeddings: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.split, self.k = split_, k
        rows = split_.train[list(TRAIN_COLUMNS)]
        rows = rows.assign(locale=rows["locale"].astype(object).where(rows["locale"].notna(), None))
        self.train = spark.createDataFrame(rows, ", ".join(TRAIN_COLUMNS.values())).persist()
        self.canonical = (
            spark.createDataFrame(episodes[["episode_id", "canonical_episode_id"]].astype(str))
            if episodes is not None and "canonical_episode_id" in episodes
            else None
        )
        self.index: EpisodeIndex = build_episode_index(episode_stats(self.train), episodes, similarity)
        self.users = sorted(split_.test)
        # The test users' frames, built by the same Spark code as the daily lists (bounded: an evaluation).
        built = user_frame(self.train, self.index, None, AbSettings(), exclude="seen").toPandas()
        wanted = built["user_id"].isin(set(self.users))
        self.frame = built[wanted].sort_values("user_id").reset_index(drop=True)
        self.embeddings = dict(embeddings or {})
        self.categories = _categories(episodes)
        positive = split_.train[split_.train["rating"] > 0]
        self.profiles = {
            u: _category_mix(g["episode_id"].tolist(), self.categories)
            for u, g in positive[positive["user_id"].isin(set(self.users))].groupby("user_id")
        }
        self.listeners = positive.groupby("episode_id")["user_id"].nunique().to_dict()
        self.n_train_users = split_.train["user_id"].nunique()
        self._side: tuple[Model, ItemSide] | None = None

    def close(self) -> None:
        self.train.unpersist()

    def fit(self, als: AlsSettings) -> Model:
        """ALS on the training part (pooled over language variants when ``als.pool_variants``)."""
        ratings = self.train.select("user_id", "episode_id", "rating")
        fitted = fit(pool_variants(ratings, self.canonical if als.pool_variants else None), als)
        factors = ItemFactors.collect(fitted.item_factors(), "episode_id")
        learned = factors.aligned(self.index.canonical_ids if als.pool_variants else self.index.ids)
        users = fitted.user_factors().collect()  # bounded: an evaluation's listeners (max_users)
        fitted.release()  # everything needed is collected above
        return Model(als, learned, {r["user_id"]: list(r["factors"]) for r in users})

    def lists(self, model: Model, policy: str, hybrid: HybridSettings) -> dict[str, list[str]]:
        """Every test listener's list under ``policy`` and the list rules ``hybrid``."""
        if self._side is None or self._side[0] is not model:  # the warm start depends on the model only
            self._side = (model, ItemSide.build(self.index, model.learned, hybrid, model.als.pool_variants))
        items = replace(self._side[1], hybrid=hybrid.updated(k=self.k))
        frame = self.frame.assign(
            policy=policy, factors=[model.user_factors.get(u) for u in self.frame["user_id"]]
        )
        out = recommend_local(frame, items).sort_values(["user_id", "rank"])
        return out.groupby("user_id", sort=False)["episode_id"].agg(list).to_dict()

    def score(self, model: Model, policy: str, hybrid: HybridSettings) -> dict[str, float | None]:
        return self.score_lists(self.lists(model, policy, hybrid), model)

    def score_lists(self, lists: dict[str, list[str]], model: Model) -> dict[str, float | None]:
        """Every metric of one policy's lists against the split's test part."""
        split_, k, users = self.split, self.k, self.users
        per_user = {
            name: float(np.mean([fn(lists.get(u, []), split_.test[u], k) for u in users]))
            for name, fn in (
                ("precision", metrics.precision_at_k), ("recall", metrics.recall_at_k),
                ("ndcg", metrics.ndcg_at_k), ("map", metrics.average_precision_at_k),
                ("hit_rate", metrics.hit_at_k),
            )
        }  # fmt: skip
        shown = [lists.get(u, []) for u in users]
        vectors = self.embeddings or {
            e: model.learned[i] for i, e in enumerate(self.index.ids) if np.abs(model.learned[i]).sum() > 0
        }
        diversity = [d for items in shown if (d := metrics.intra_list_diversity(items, vectors)) is not None]
        calibration = [
            c
            for u in users
            if (c := category_miscalibration(lists.get(u, []), self.profiles.get(u, {}), self.categories))
            is not None
        ]
        return {
            **per_user,
            "coverage": metrics.catalog_coverage(shown, len(self.index)),
            "novelty": metrics.novelty(shown, self.listeners, self.n_train_users),
            "diversity": float(np.mean(diversity)) if diversity else None,
            "cold_recall": _recall_on(lists, split_, users, split_.cold_items, k),
            "new_variant_recall": _recall_on(lists, split_, users, split_.new_variants, k),
            "calibration": float(np.mean(calibration)) if calibration else None,
        }


def _categories(episodes: pd.DataFrame | None) -> dict[str, tuple[str, ...]]:
    if episodes is None or "categories" not in episodes:
        return {}
    return {
        str(e): tuple(c) for e, c in zip(episodes["episode_id"], episodes["categories"], strict=True)
        if c is not None and len(c)
    }  # fmt: skip


def canonical_map(episodes: pd.DataFrame | None) -> dict[str, str]:
    """episode → canonical episode, for the variants of the catalog (empty without one)."""
    if episodes is None or "canonical_episode_id" not in episodes:
        return {}
    return dict(
        zip(episodes["episode_id"].astype(str), episodes["canonical_episode_id"].astype(str), strict=True)
    )


def evaluate(
    spark: SparkSession,
    daily: pd.DataFrame,
    protocol: str,
    k: int,
    als: AlsSettings,
    hybrid: HybridSettings,
    episodes: pd.DataFrame | None = None,
    similarity: pd.DataFrame | None = None,
    embeddings: Mapping[str, np.ndarray] | None = None,
    policies: tuple[str, ...] = BASELINES,
    strategies: tuple[str, ...] = COLD_START_STRATEGIES,
    rerank_weights: tuple[float, ...] = RERANK_WEIGHTS,
    seed: int = 42,
) -> EvaluationResult:
    """Fit ALS on the training part, then list and score every policy, cold-start strategy, the
    hybrid without the followed-show source, and the re-ranking at each of ``rerank_weights``."""
    split_ = split_train_test(daily, protocol, seed=seed, canonical=canonical_map(episodes))
    bench = Bench(spark, split_, k, episodes, similarity, embeddings)
    try:
        model = bench.fit(als)
        has_content = bench.index.similarity.nnz > 0
        notes = (
            []
            if has_content
            else ["no content similarity for these episodes: content-based scores are empty"]
        )
        hybrid = with_cold_start(hybrid).updated(k=k)
        results = {"hybrid": bench.score(model, "hybrid", hybrid)}
        for policy in policies:
            if policy == "content_only" and not has_content:
                results[policy] = dict.fromkeys(METRICS)
                continue
            results[policy] = bench.score(model, policy, hybrid)
        by_strategy = {hybrid.cold_start: results["hybrid"]}
        for strategy in strategies:
            if strategy not in by_strategy:
                by_strategy[strategy] = bench.score(model, "hybrid", hybrid.updated(cold_start=strategy))
        cold_start = {s: {"ndcg": v["ndcg"], "cold_recall": v["cold_recall"]} for s, v in by_strategy.items()}
        ablations = {}
        if hybrid.follow_weight > 0 and bench.index.show_episodes:
            ablations["no_follow"] = bench.score(model, "hybrid", hybrid.updated(follow_weight=0.0))
        tradeoff: dict[float, dict[str, float | None]] = {}
        if has_content:
            for weight in rerank_weights:
                full = (
                    results["hybrid"]
                    if weight == hybrid.rerank_weight
                    else bench.score(model, "hybrid", hybrid.updated(rerank_weight=weight))
                )
                tradeoff[weight] = {m: full[m] for m in ("ndcg", "diversity", "calibration")}
    finally:
        bench.close()
    return EvaluationResult(
        protocol=protocol, k=k, users=len(bench.users), items=len(bench.index),
        cold_items=len(split_.cold_items),
        als={**als.model_dump(), "cold_start": hybrid.cold_start}, policies=results, cold_start=cold_start,
        recommended_cold_start=choose_cold_start(cold_start, results.get("als_only", {}).get("ndcg")),
        notes=notes, new_variants=len(split_.new_variants),
        hybrid={name: getattr(hybrid, name) for name in ("als_weight", "follow_weight", "rerank_weight")},
        ablations=ablations, rerank={f"{w:g}": v for w, v in tradeoff.items()},
        recommended_rerank_weight=choose_rerank_weight(tradeoff) if tradeoff else None,
    )  # fmt: skip


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
