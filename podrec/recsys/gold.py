"""The gold recommender tables of one day, each built by one function: read the inputs, compute, write.

``gold.als_factors`` (the day's ALS model), ``gold.recommendations`` (every listener's list),
``gold.evaluation`` (every policy measured offline) and ``gold.tuning`` (the weekly sweep and its
decision). The Dagster assets (``podrec_assets/gold_recommender.py``) call one function each and turn
what it returns into metadata, so all of this runs, and is tested, without Dagster.

Every function resolves the setting that serves its day the same way (``setting_on``): the newest
``gold.tuning`` decision on or before the day, or the settings as written when pinned
(``PODREC_TUNING_PIN``) or before the first decision.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from podrec.ids import POPULAR_USER_PREFIX
from podrec.lake.delta import WriteResult, exists, read, read_required, replace_partitions
from podrec.lake.paths import table_uri
from podrec.lake.schemas import GOLD_EVALUATION, GOLD_RECOMMENDATIONS, GOLD_TUNING
from podrec.privacy import Suppression, forget_late_in_model
from podrec.recsys.als import ItemFactors, factor_rows, fit, model_version, pool_variants, window_ratings
from podrec.recsys.bursts import TABLE as FLAGGED
from podrec.recsys.bursts import held_out_in_lake, without_held_out
from podrec.recsys.cold_start import EVALUATION_LOOKBACK_DAYS, strategy_from_evaluation
from podrec.recsys.evaluation import Bench, canonical_map, evaluate, evaluation_rows, split_train_test
from podrec.recsys.hybrid import ItemSide, with_cold_start
from podrec.recsys.scoring import (
    build_episode_index,
    episode_stats,
    recommend_in_spark,
    user_frame,
    window_interactions,
    with_popular_lists,
)
from podrec.recsys.tuning import Decision, Setting, serving_setting, sweep
from podrec.settings import AlsSettings, HybridSettings, PodrecSettings, TuningSettings

ENGAGEMENT = ("silver", "daily_engagement")
EPISODES = ("silver", "episodes")
SIMILARITY = ("gold", "episode_similarity")
EMBEDDINGS = ("gold", "episode_embeddings")
ALS_FACTORS = ("gold", "als_factors")
ALS_MODELS = ("gold", "als_models")
RECOMMENDATIONS = ("gold", "recommendations")
EVALUATION = ("gold", "evaluation")
TUNING = ("gold", "tuning")

Log = Callable[[str], None]


def latest_tuning(session: SparkSession, root: str, day: date) -> dict[str, Any] | None:
    """The newest gold.tuning decision on or before ``day`` (its row), None before the first."""
    uri = table_uri(root, *TUNING)
    if not exists(session, uri):
        return None
    rows = read(session, uri).where(F.col("tuned_date") <= F.lit(day)).orderBy(F.desc("tuned_date")).limit(1)
    found = rows.collect()
    return found[0].asDict() if found else None


def setting_on(
    settings: PodrecSettings, session: SparkSession, root: str, day: date
) -> tuple[AlsSettings, HybridSettings, str]:
    """The ALS and list settings that serve ``day``, and why (``tuning.serving_setting``)."""
    return serving_setting(settings.als, settings.hybrid, settings.tuning, latest_tuning(session, root, day))


def content_inputs(session: SparkSession, root: str) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The catalog and content neighbours when the content track has run; imported logs have none."""
    episodes = similarity = None
    if exists(session, table_uri(root, *EPISODES)):
        columns = ["episode_id", "canonical_episode_id", "feed_id", "language", "title", "published_at"]
        episodes = read(session, table_uri(root, *EPISODES)).select(*columns, "categories").toPandas()
    if exists(session, table_uri(root, *SIMILARITY)):
        similarity = read(session, table_uri(root, *SIMILARITY)).toPandas()
    return episodes, similarity


def episode_vectors(session: SparkSession, root: str) -> dict[str, np.ndarray]:
    """Transcript embeddings by episode (one per episode: the newest model's), for intra-list diversity
    in content terms; empty when the content track has not run (diversity then uses ALS factors)."""
    uri = table_uri(root, *EMBEDDINGS)
    if not exists(session, uri):
        return {}
    rows = read(session, uri).select("episode_id", "model", "vector").toPandas()
    rows = rows.sort_values("model").drop_duplicates("episode_id", keep="last")
    return {
        e: np.asarray(v, dtype=np.float32) for e, v in zip(rows["episode_id"], rows["vector"], strict=True)
    }


def recent_evaluations(session: SparkSession, root: str, day: date) -> pd.DataFrame | None:
    """gold.evaluation's rows for the cold-start pick: the lookback ending on ``day``, sweeps left out."""
    uri = table_uri(root, *EVALUATION)
    if not exists(session, uri):
        return None
    start = day - timedelta(days=EVALUATION_LOOKBACK_DAYS - 1)
    return (
        read(session, uri)
        .where(F.col("eval_date").between(F.lit(start), F.lit(day)))
        .where(~F.col("params").contains('"tuning": true'))
        .where(F.col("metric").isin("ndcg", "cold_recall") & F.col("policy").isin("hybrid", "als_only"))
        .toPandas()
    )


def engagement(session: SparkSession, root: str) -> Any:
    return read_required(session, table_uri(root, *ENGAGEMENT), "materialize silver/daily_engagement")


def evaluation_days(
    session: SparkSession, root: str, day: date, window_days: int, settings: PodrecSettings
) -> pd.DataFrame:
    """The engagement the evaluation and the sweep measure on, bounded by the window and a stable sample
    of listeners (``PODREC_EVALUATION_MAX_USERS``): a year of history costs what a window does."""
    rows = evaluation_rows(engagement(session, root), day, window_days, settings.evaluation.max_users)
    return rows.toPandas()


@dataclass(frozen=True)
class AlsFactorsBuilt:
    written: WriteResult
    version: str
    model_uri: str
    users: int
    episodes: int
    ratings: int
    als: AlsSettings
    why: str
    held_out_listeners: int


def build_als_factors(
    session: SparkSession, root: str, day: date, settings: PodrecSettings, overrides: dict[str, Any]
) -> AlsFactorsBuilt:
    """Fit the day's ALS on the trailing window of engagement (variants pooled, flagged listeners left
    out), save the fitted pipeline under ``gold/als_models/model_date=<day>`` and write its factors."""
    tuned, _, why = setting_on(settings, session, root, day)
    als = tuned.updated(**overrides)
    if overrides:
        why = f"run config {overrides} over: {why}"
    guard = Suppression(root).guard()
    canonical = None
    if als.pool_variants and exists(session, table_uri(root, *EPISODES)):
        canonical = read(session, table_uri(root, *EPISODES))
    # Coordinated plays stay in the lake but out of the fit (podrec/recsys/bursts.py).
    held = held_out_in_lake(session, table_uri(root, *FLAGGED), day, als.window_days)
    window = window_ratings(guard.keep(engagement(session, root)), day, als.window_days)
    ratings = pool_variants(without_held_out(window, held), canonical).persist()
    n_ratings = ratings.count()
    if n_ratings == 0:
        raise ValueError(f"no engagement in the {als.window_days} days ending {day}: nothing to fit")
    fitted = fit(ratings, als)
    version = model_version(als, day)
    model_uri = f"{table_uri(root, *ALS_MODELS)}/model_date={day.isoformat()}"
    fitted.save(model_uri)
    uri = table_uri(root, *ALS_FACTORS)
    written = replace_partitions(
        factor_rows(fitted, ratings, version, day), uri, "model_date", [day.isoformat()]
    )
    if guard.sweep(session, uri, column="id", side=True):
        forget_late_in_model(model_uri, guard)
    fitted.release()
    ratings.unpersist()
    sides = dict(
        read(session, uri).where(F.col("model_date") == F.lit(day)).groupBy("side").count().collect()
    )
    return AlsFactorsBuilt(
        written, version, model_uri, users=sides.get("user", 0), episodes=sides.get("item", 0),
        ratings=n_ratings, als=als, why=why, held_out_listeners=held.count() if held is not None else 0,
    )  # fmt: skip


@dataclass(frozen=True)
class RecommendationsBuilt:
    written: WriteResult
    preview: pd.DataFrame
    users: int
    rows_by_policy: dict[str, int]
    version: str
    cold_start: str
    hybrid: HybridSettings
    why: str


def build_recommendations(
    session: SparkSession, root: str, day: date, settings: PodrecSettings, log: Log
) -> RecommendationsBuilt:
    """Every listener's list for ``day`` from the day's factors (``recommend_in_spark``), with the
    popular fallback lists per language, written to ``gold.recommendations``."""
    factors = read_required(session, table_uri(root, *ALS_FACTORS), "materialize gold/als_factors").where(
        F.col("model_date") == F.lit(day)
    )
    first = factors.select("model_version").limit(1).collect()
    if not first:
        raise ValueError(f"no ALS factors for {day}: materialize gold/als_factors for that date first")
    version = first[0]["model_version"]
    interactions = window_interactions(engagement(session, root), day, settings.als.window_days).persist()
    # Popularity and the cold-start weights count listeners: coordinated ones are not counted.
    held = held_out_in_lake(session, table_uri(root, *FLAGGED), day, settings.als.window_days)
    stats = episode_stats(without_held_out(interactions, held))
    index = build_episode_index(stats, *content_inputs(session, root))
    als, tuned, setting_why = setting_on(settings, session, root, day)
    strategy, why = strategy_from_evaluation(tuned.cold_start, recent_evaluations(session, root, day))
    log(f"cold start: {strategy} ({why}); setting: {setting_why}")
    hybrid = with_cold_start(tuned, strategy)
    item_factors = ItemFactors.collect(factors.where(F.col("side") == "item"))
    # Pooled: the item side holds canonical episodes; each variant (a new translation too) reads its own.
    learned = item_factors.aligned(index.canonical_ids if als.pool_variants else index.ids)
    # The day's lists are served from the end of the day on: an episode's freshness counts from there.
    served_from = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC).timestamp()
    items = ItemSide.build(index, learned, hybrid, pooled=als.pool_variants, as_of=served_from)
    user_factors = factors.where(F.col("side") == "user").select(F.col("id").alias("user_id"), "factors")
    users = user_frame(interactions, index, user_factors, settings.ab)
    languages = sorted(set(index.popularity) | {hybrid.fallback_language})
    out = (
        recommend_in_spark(with_popular_lists(users, languages), items)
        .withColumn("experiment_id", F.lit(settings.ab.experiment_id))
        .withColumn("model_version", F.lit(version))
        .withColumn("rec_date", F.lit(day))
        .select(*GOLD_RECOMMENDATIONS.fieldNames())
    )
    guard = Suppression(root).guard()
    uri = table_uri(root, *RECOMMENDATIONS)
    written = replace_partitions(guard.keep(out), uri, "rec_date", [day.isoformat()])
    guard.sweep(session, uri)
    interactions.unpersist()
    lists = read(session, uri).where(F.col("rec_date") == F.lit(day))
    listeners = lists.where(~F.col("user_id").startswith(POPULAR_USER_PREFIX))
    preview = listeners.orderBy("user_id", "rank").limit(10)
    return RecommendationsBuilt(
        written,
        preview.select("user_id", "rank", "episode_id", "policy", "reason").toPandas(),
        users=listeners.select("user_id").distinct().count(),
        rows_by_policy={r["policy"]: r["count"] for r in lists.groupBy("policy").count().collect()},
        version=version,
        cold_start=f"{strategy} ({why})",
        hybrid=hybrid,
        why=setting_why,
    )


@dataclass(frozen=True)
class EvaluationBuilt:
    written: WriteResult
    reports: dict[str, Any]
    why: str


def build_evaluation(
    session: SparkSession, root: str, day: date, settings: PodrecSettings, *, protocols: list[str], k: int,
    window_days: int, als_overrides: dict[str, Any], log: Log,
) -> EvaluationBuilt:  # fmt: skip
    """Every policy measured under each protocol on the engagement up to ``day``."""
    daily = evaluation_days(session, root, day, window_days, settings)
    episodes, similarity = content_inputs(session, root)
    vectors = episode_vectors(session, root)
    tuned_als, hybrid, why = setting_on(settings, session, root, day)
    als = tuned_als.updated(**als_overrides)
    now = datetime.now(UTC)
    rows, reports = [], {}
    for protocol in protocols:
        result = evaluate(session, daily, protocol, k, als, hybrid, episodes, similarity, vectors)
        reports[protocol] = json.loads(result.to_json())
        rows += result.table_rows(now, day)
        log(f"{protocol}: " + ", ".join(f"{p} ndcg {v['ndcg']}" for p, v in result.policies.items()))
    written = replace_partitions(
        session.createDataFrame(rows, schema=GOLD_EVALUATION), table_uri(root, *EVALUATION), "eval_date",
        [day.isoformat()],
    )  # fmt: skip
    return EvaluationBuilt(written, reports, why if not als_overrides else f"run config over: {why}")


@dataclass(frozen=True)
class TuningBuilt:
    written: WriteResult
    decision: Decision
    grid: TuningSettings
    why: str
    users: int


def build_tuning(
    session: SparkSession, root: str, day: date, settings: PodrecSettings, *, grid: TuningSettings,
    window_days: int,
) -> TuningBuilt:  # fmt: skip
    """The week's sweep beside the setting serving the day before, and the acceptance rule's decision,
    written to ``gold.tuning`` as the setting the fit and the lists use from ``day`` on."""
    daily = evaluation_days(session, root, day, window_days, settings)
    episodes, similarity = content_inputs(session, root)
    als, hybrid, why = setting_on(settings, session, root, day - timedelta(days=1))
    hybrid = with_cold_start(hybrid)
    split_ = split_train_test(daily, grid.protocol, canonical=canonical_map(episodes))
    bench = Bench(session, split_, grid.k, episodes, similarity, episode_vectors(session, root))
    try:
        decision = sweep(bench, als, hybrid, Setting.of(als, hybrid), grid)
    finally:
        bench.close()
    row = (
        grid.protocol, grid.k, grid.margin, decision.incumbent.to_json(), decision.challenger.to_json(),
        decision.serving.to_json(), decision.incumbent_ndcg, decision.challenger_ndcg, decision.accepted,
        decision.reason, json.dumps(decision.trials), len(split_.test), datetime.now(UTC), day,
    )  # fmt: skip
    written = replace_partitions(
        session.createDataFrame([row], schema=GOLD_TUNING), table_uri(root, *TUNING), "tuned_date",
        [day.isoformat()],
    )  # fmt: skip
    return TuningBuilt(written, decision, grid, why, users=len(split_.test))
