"""Gold: the collaborative and hybrid track — ALS factors, daily recommendation lists, evaluation.

Each asset is partitioned by day: the model, the lists and the evaluation *for* a date, so one
day can be re-run or backfilled without touching another's version.
"""

import json
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
from dagster import (
    AssetDep,
    AssetExecutionContext,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    TimeWindowPartitionMapping,
    asset,
)
from dagster_pyspark import LazyPySparkResource
from pydantic import Field
from pyspark.sql import Row, SparkSession
from pyspark.sql import functions as F

from podrec.lake.delta import exists, read_delta, read_required, replace_partition
from podrec.lake.schemas import GOLD_ALS_FACTORS, GOLD_EVALUATION, GOLD_RECOMMENDATIONS
from podrec.recsys.als import Factors, fit, window_ratings
from podrec.recsys.evaluation import PROTOCOLS, EvaluationResult, choose_cold_start, evaluate, sweep
from podrec.recsys.hybrid import ItemSide
from podrec.recsys.scoring import (
    POPULAR_USER_PREFIX,
    build_catalog,
    recommend_in_spark,
    user_frame,
    window_interactions,
)
from podrec.settings import load_settings
from podrec_assets.calendar import daily_partitions
from podrec_assets.gold_content import gold_episode_similarity
from podrec_assets.metadata import delta_write_metadata
from podrec_assets.silver import silver_daily_engagement, silver_episodes
from resources import LakeResource, RecommenderResource

# A fit reads the trailing window of engagement: the days before the partition are inputs too.
_window = AssetDep(
    silver_daily_engagement,
    partition_mapping=TimeWindowPartitionMapping(
        start_offset=-(load_settings().als_window_days - 1),
        allow_nonexistent_upstream_partitions=True,  # the first days' windows reach before partition one
    ),
)


class AlsConfig(Config):
    """Override the configured ALS settings for one run (e.g. the winner of ``podrec tune``)."""

    alpha: float | None = None
    reg_param: float | None = None
    rank: int | None = None
    max_iter: int | None = None


@asset(
    key=["gold", "als_factors"],
    group_name="gold",
    kinds={"spark", "delta"},
    owners=["team:podrec"],
    partitions_def=daily_partitions,
    deps=[_window],
    backfill_policy=BackfillPolicy.multi_run(1),  # one model per date, each its own run
    retry_policy=RetryPolicy(max_retries=1, delay=30),
    description=(
        "User and episode factors of Spark ML ALS (implicitPrefs, alpha 40, regParam 0.08 by default) "
        "fitted on the trailing window of daily engagement ending on the partition's date. The fitted "
        "pipeline (id indexers + ALS) is saved beside it under als_models/<date>, one version per date."
    ),
)
def gold_als_factors(
    context: AssetExecutionContext,
    config: AlsConfig,
    spark: LazyPySparkResource,
    lake: LakeResource,
    recommender: RecommenderResource,
) -> MaterializeResult:
    session = spark.spark_session
    day = date.fromisoformat(context.partition_key)
    params = recommender.als_params(
        alpha=config.alpha, reg_param=config.reg_param, rank=config.rank, max_iter=config.max_iter
    )
    engagement = read_required(
        session, lake.table("silver", "daily_engagement"), "materialize silver/daily_engagement"
    )
    ratings = window_ratings(engagement, day, recommender.window_days).persist()
    n_ratings = ratings.count()
    if n_ratings == 0:
        raise ValueError(f"no engagement in the {recommender.window_days} days ending {day}: nothing to fit")
    model, factors = fit(ratings, params)
    version = params.version(day)
    model_uri = f"{lake.table('gold', 'als_models')}/model_date={day.isoformat()}"
    model.write().overwrite().save(model_uri)
    counts = {
        r["episode_id"]: r["n"] for r in ratings.groupBy("episode_id").agg(F.count("*").alias("n")).collect()
    }
    user_counts = {
        r["user_id"]: r["n"] for r in ratings.groupBy("user_id").agg(F.count("*").alias("n")).collect()
    }
    ratings.unpersist()
    rows = [
        ("user", u, v.tolist(), user_counts.get(u, 0), version, day)
        for u, v in zip(factors.user_ids, factors.user, strict=True)
    ]
    rows += [
        ("item", e, v.tolist(), counts.get(e, 0), version, day)
        for e, v in zip(factors.item_ids, factors.item, strict=True)
    ]
    df = session.createDataFrame(rows, schema=GOLD_ALS_FACTORS)
    result = replace_partition(df, lake.table("gold", "als_factors"), "model_date", [day.isoformat()])
    context.log.info(f"ALS {version}: {len(factors.user_ids)} users, {len(factors.item_ids)} episodes")
    return MaterializeResult(
        metadata={
            **delta_write_metadata(result),
            "model_version": version,
            "model_path": MetadataValue.path(model_uri),
            "users": len(factors.user_ids),
            "episodes": len(factors.item_ids),
            "ratings": n_ratings,
            "params": MetadataValue.json(params.__dict__),
        }
    )


def _content_inputs(
    session: SparkSession, lake: LakeResource
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The catalog and content neighbours when the content track has run; imported logs have none."""
    episodes = similarity = None
    if exists(session, lake.table("silver", "episodes")):
        episodes = (
            read_delta(session, lake.table("silver", "episodes"))
            .select("episode_id", "canonical_episode_id", "feed_id", "language", "title")
            .toPandas()
        )
    if exists(session, lake.table("gold", "episode_similarity")):
        similarity = read_delta(session, lake.table("gold", "episode_similarity")).toPandas()
    return episodes, similarity


@asset(
    key=["gold", "recommendations"],
    group_name="gold",
    kinds={"spark", "delta"},
    owners=["team:podrec"],
    partitions_def=daily_partitions,
    deps=[gold_als_factors, _window, silver_episodes, gold_episode_similarity],
    backfill_policy=BackfillPolicy.multi_run(1),
    description=(
        "Each listener's top-K episodes for the date, with the A/B policy of their sticky bucket "
        "(hybrid: ALS and content candidates, scores normalised per user and blended 0.7/0.3, new "
        "episodes on warm-started factors; als_only: ALS alone), one variant per canonical episode in "
        "their language, at most a few per show, nothing they finished, and the reason for each row. "
        f"Rows with user_id {POPULAR_USER_PREFIX}<language> are the fallback lists for new listeners."
    ),
)
def gold_recommendations(
    context: AssetExecutionContext,
    spark: LazyPySparkResource,
    lake: LakeResource,
    recommender: RecommenderResource,
) -> MaterializeResult:
    session = spark.spark_session
    day = date.fromisoformat(context.partition_key)
    factors_df = read_required(session, lake.table("gold", "als_factors"), "materialize gold/als_factors")
    factors_rows = factors_df.where(F.col("model_date") == F.lit(day)).collect()
    if not factors_rows:
        raise ValueError(f"no ALS factors for {day}: materialize gold/als_factors for that date first")
    version = factors_rows[0]["model_version"]
    factors = _factors(factors_rows)
    engagement = read_required(
        session, lake.table("silver", "daily_engagement"), "materialize silver/daily_engagement"
    )
    interactions = window_interactions(engagement, day, recommender.window_days)
    episodes, similarity = _content_inputs(session, lake)
    catalog = build_catalog(interactions, episodes, similarity)
    strategy, why = _cold_start(session, lake, recommender.cold_start_strategy, day)
    context.log.info(f"cold start: {strategy} ({why})")
    items = ItemSide.build(catalog, factors.aligned_items(catalog.ids), recommender.hybrid_params(strategy))
    ab = recommender.ab_policy()
    users = user_frame(interactions, catalog, factors, lambda u: ab.assign(u)[1])
    languages = sorted(set(catalog.popularity) | {recommender.fallback_language})
    newcomers = pd.DataFrame(
        [
            {"user_id": f"{POPULAR_USER_PREFIX}{lang}", "locale": lang, "policy": "popular", "factors": None,
             "history": [], "weights": [], "exclude": []}
            for lang in languages
        ]
    )  # fmt: skip
    lists = recommend_in_spark(session, pd.concat([users, newcomers], ignore_index=True), items)
    who = pd.concat([users[["user_id", "locale"]], newcomers[["user_id", "locale"]]], ignore_index=True)
    who["bucket"] = pd.array(
        [None if u.startswith(POPULAR_USER_PREFIX) else ab.assign(u)[0] for u in who["user_id"]],
        dtype="Int32",
    )
    who = session.createDataFrame(who, schema="user_id string, locale string, bucket int")
    out = (
        lists.join(who, "user_id", "left")
        .withColumn("experiment_id", F.lit(ab.experiment_id))
        .withColumn("model_version", F.lit(version))
        .withColumn("rec_date", F.lit(day))
        .select(*GOLD_RECOMMENDATIONS.fieldNames())
    )
    result = replace_partition(out, lake.table("gold", "recommendations"), "rec_date", [day.isoformat()])
    written = read_delta(session, lake.table("gold", "recommendations")).where(
        F.col("rec_date") == F.lit(day)
    )
    by_policy = {r["policy"]: r["count"] for r in written.groupBy("policy").count().collect()}
    preview = (
        written.where(~F.col("user_id").startswith(POPULAR_USER_PREFIX)).orderBy("user_id", "rank").limit(10)
    )
    return MaterializeResult(
        metadata={
            **delta_write_metadata(
                result, preview.select("user_id", "rank", "episode_id", "policy", "reason").toPandas()
            ),
            "users": len(users),
            "rows_by_policy": MetadataValue.json(by_policy),
            "model_version": version,
            "experiment_id": ab.experiment_id,
            "cold_start": f"{strategy} ({why})",
        }
    )


def _cold_start(session: SparkSession, lake: LakeResource, configured: str, day: date) -> tuple[str, str]:
    """The configured strategy, or for ``auto`` DESIGN.md's rule applied to the newest evaluation
    (time protocol preferred) on or before ``day``."""
    if configured != "auto":
        return configured, "configured"
    uri = lake.table("gold", "evaluation")
    if not exists(session, uri):
        return "factor", "auto: no evaluation yet"
    rows = (
        read_delta(session, uri)
        .where((F.col("eval_date") <= F.lit(day)) & ~F.col("params").contains('"tuning": true'))
        .where(F.col("metric").isin("ndcg", "cold_recall") & F.col("policy").isin("hybrid", "als_only"))
        .toPandas()
    )
    if rows.empty:
        return "factor", "auto: no evaluation yet"
    latest = rows[rows["eval_date"] == rows["eval_date"].max()]
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
    evaluated = latest["eval_date"].iloc[0]
    return (
        (chosen, f"auto: {protocol} evaluation of {evaluated}")
        if chosen
        else ("factor", "auto: no strategy qualified")
    )


def _factors(rows: list[Row]) -> Factors:
    users = [r for r in rows if r["side"] == "user"]
    items = [r for r in rows if r["side"] == "item"]
    return Factors(
        user_ids=np.array([r["id"] for r in users], dtype=object),
        user=np.array([r["factors"] for r in users], dtype=np.float32),
        item_ids=np.array([r["id"] for r in items], dtype=object),
        item=np.array([r["factors"] for r in items], dtype=np.float32),
    )


class EvaluationConfig(Config):
    """Which protocols, K, and optionally a sweep of ALS settings (what ``podrec tune`` runs)."""

    protocols: list[str] = Field(default_factory=lambda: list(PROTOCOLS))
    k: int = 10
    alpha: float | None = None
    reg_param: float | None = None
    rank: int | None = None
    sweep_alpha: list[float] = Field(default_factory=list)
    sweep_reg_param: list[float] = Field(default_factory=list)
    sweep_rank: list[int] = Field(default_factory=list)


@asset(
    key=["gold", "evaluation"],
    group_name="gold",
    kinds={"spark", "delta"},
    owners=["team:podrec"],
    partitions_def=daily_partitions,
    deps=[silver_daily_engagement, silver_episodes, gold_episode_similarity],
    backfill_policy=BackfillPolicy.multi_run(1),
    description=(
        "Offline evaluation on the engagement up to the date: every policy (hybrid, als_only, "
        "content_only, popular, random) at K under the time split and the per-user stratified 75/25 "
        "split — precision, recall, NDCG, MAP, hit rate, coverage, novelty, diversity, cold-start "
        "recall — plus NDCG and new-episode recall per cold-start strategy. With sweep_* lists set it "
        "also reports every ALS setting of the grid."
    ),
)
def gold_evaluation(
    context: AssetExecutionContext,
    config: EvaluationConfig,
    spark: LazyPySparkResource,
    lake: LakeResource,
    recommender: RecommenderResource,
) -> MaterializeResult:
    session = spark.spark_session
    day = date.fromisoformat(context.partition_key)
    daily = (
        read_required(
            session, lake.table("silver", "daily_engagement"), "materialize silver/daily_engagement"
        )
        .where(F.col("event_date") <= F.lit(day))
        .select("user_id", "episode_id", "event_date", "engagement", "max_completion", "locale")
        .toPandas()
    )
    episodes, similarity = _content_inputs(session, lake)
    als = recommender.als_params(alpha=config.alpha, reg_param=config.reg_param, rank=config.rank)
    hybrid = recommender.hybrid_params()
    now = datetime.now(UTC)
    rows, reports, sweeps = [], {}, {}
    for protocol in config.protocols:
        result = evaluate(session, daily, protocol, config.k, als, hybrid, episodes, similarity)
        reports[protocol] = json.loads(result.to_json())
        rows += _rows(result, now, day)
        context.log.info(
            f"{protocol}: " + ", ".join(f"{p} ndcg {v['ndcg']}" for p, v in result.policies.items())
        )
        if config.sweep_alpha or config.sweep_reg_param or config.sweep_rank:
            grid = sweep(
                session, daily, protocol, config.k, als, hybrid, episodes, similarity,
                alphas=config.sweep_alpha or [als.alpha],
                reg_params=config.sweep_reg_param or [als.reg_param], ranks=config.sweep_rank or [als.rank],
            )  # fmt: skip
            sweeps[protocol] = [json.loads(r.to_json()) for r in grid]
            rows += [row for r in grid for row in _rows(r, now, day, tuned=True)]
    df = session.createDataFrame(rows, schema=GOLD_EVALUATION)
    written = replace_partition(df, lake.table("gold", "evaluation"), "eval_date", [day.isoformat()])
    table = "\n".join(
        f"| {protocol} | {policy} | {_fmt(v['ndcg'])} | {_fmt(v['recall'])} | {_fmt(v['cold_recall'])} |"
        for protocol, report in reports.items()
        for policy, v in report["policies"].items()
        if v["ndcg"] is not None
    )
    return MaterializeResult(
        metadata={
            **delta_write_metadata(written),
            "report": MetadataValue.json(reports),
            "sweep": MetadataValue.json(sweeps),
            "summary": MetadataValue.md(
                "| protocol | policy | NDCG@K | recall@K | cold recall |\n|---|---|---|---|---|\n" + table
            ),
        }
    )


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _rows(result: EvaluationResult, now: datetime, day: date, tuned: bool = False) -> list[tuple]:
    params = json.dumps({**result.als, "tuning": tuned})
    return [
        (result.protocol, policy, strategy, metric, result.k, value, result.users, params, now, day)
        for policy, strategy, metric, value in result.rows()
    ]
