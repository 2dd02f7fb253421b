"""Gold, recommender track: the day's ALS model, every listener's list, and the offline evaluation.

Each asset is partitioned by day: the model, the lists and the evaluation *for* a date, so one
day can be re-run or backfilled without touching another's version.
"""

import json
from datetime import UTC, date, datetime, timedelta

import pandas as pd
from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetsDefinition,
    AssetSelection,
    BackfillPolicy,
    Config,
    Definitions,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    RunRequest,
    ScheduleEvaluationContext,
    TimeWindowPartitionMapping,
    asset,
    define_asset_job,
    schedule,
)
from dagster_pyspark import LazyPySparkResource
from pydantic import Field
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from podrec.lake.delta import exists, read, read_required, replace_partitions
from podrec.lake.schemas import GOLD_EVALUATION, GOLD_RECOMMENDATIONS
from podrec.recsys.als import ItemFactors, factor_rows, fit, model_version, window_ratings
from podrec.recsys.cold_start import EVALUATION_LOOKBACK_DAYS, strategy_from_evaluation
from podrec.recsys.evaluation import PROTOCOLS, evaluate, evaluation_rows, summary_markdown, sweep
from podrec.recsys.hybrid import ItemSide, with_cold_start
from podrec.recsys.popular import POPULAR_USER_PREFIX
from podrec.recsys.scoring import (
    build_episode_index,
    episode_stats,
    recommend_in_spark,
    user_frame,
    window_interactions,
    with_popular_lists,
)
from podrec.recsys.window import partition_start_offset
from podrec.settings import PodrecSettings
from podrec_assets.calendar import Calendar
from podrec_assets.metadata import delta_write_metadata
from resources import LakeResource

ENGAGEMENT = ["silver", "daily_engagement"]
RECOMMENDER_ASSETS = (["gold", "als_factors"], ["gold", "recommendations"], ["mongo", "serving_version"])


class AlsRunConfig(Config):
    """Override the configured ALS settings (``settings.als``) for one run, under the same names."""

    alpha: float | None = None
    reg_param: float | None = None
    rank: int | None = None
    max_iter: int | None = None

    def overrides(self) -> dict[str, float | int]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


def als_factors(settings: PodrecSettings, calendar: Calendar) -> AssetsDefinition:
    @asset(
        key=["gold", "als_factors"],
        group_name="gold",
        kinds={"spark", "delta"},
        owners=["team:podrec"],
        partitions_def=calendar.daily,
        deps=[AssetDep(ENGAGEMENT, partition_mapping=calendar.model_window)],
        backfill_policy=BackfillPolicy.multi_run(1),  # one model per date, each its own run
        retry_policy=RetryPolicy(max_retries=1, delay=30),
        description=(
            "User and episode factors of Spark ML ALS (implicitPrefs, alpha 40, regParam 0.08 by default) "
            "fitted on the trailing window of daily engagement ending on the partition's date. The fitted "
            "pipeline (id indexers + ALS) is saved beside it under als_models/<date>, one version per date."
        ),
    )
    def gold_als_factors(
        context: AssetExecutionContext, config: AlsRunConfig, spark: LazyPySparkResource, lake: LakeResource
    ) -> MaterializeResult:
        session = spark.spark_session
        day = date.fromisoformat(context.partition_key)
        als = settings.als.updated(**config.overrides())
        engagement = read_required(session, lake.table(*ENGAGEMENT), "materialize silver/daily_engagement")
        ratings = window_ratings(engagement, day, als.window_days).persist()
        n_ratings = ratings.count()
        if n_ratings == 0:
            raise ValueError(f"no engagement in the {als.window_days} days ending {day}: nothing to fit")
        fitted = fit(ratings, als)
        version = model_version(als, day)
        model_uri = f"{lake.table('gold', 'als_models')}/model_date={day.isoformat()}"
        fitted.save(model_uri)
        rows = factor_rows(fitted, ratings, version, day)
        result = replace_partitions(rows, lake.table("gold", "als_factors"), "model_date", [day.isoformat()])
        ratings.unpersist()
        written = read(session, lake.table("gold", "als_factors")).where(F.col("model_date") == F.lit(day))
        sides = dict(written.groupBy("side").count().collect())
        context.log.info(f"ALS {version}: {sides.get('user', 0)} users, {sides.get('item', 0)} episodes")
        return MaterializeResult(
            metadata={
                **delta_write_metadata(result),
                "model_version": version,
                "model_path": MetadataValue.path(model_uri),
                "users": sides.get("user", 0),
                "episodes": sides.get("item", 0),
                "ratings": n_ratings,
                "params": MetadataValue.json(als.model_dump()),
            }
        )

    return gold_als_factors


def content_inputs(
    session: SparkSession, lake: LakeResource
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The catalog and content neighbours when the content track has run; imported logs have none."""
    episodes = similarity = None
    if exists(session, lake.table("silver", "episodes")):
        episodes = (
            read(session, lake.table("silver", "episodes"))
            .select("episode_id", "canonical_episode_id", "feed_id", "language", "title")
            .toPandas()
        )
    if exists(session, lake.table("gold", "episode_similarity")):
        similarity = read(session, lake.table("gold", "episode_similarity")).toPandas()
    return episodes, similarity


def recent_evaluations(session: SparkSession, lake: LakeResource, day: date) -> pd.DataFrame | None:
    """gold.evaluation's rows for the cold-start pick: the lookback ending on ``day``, sweeps left out."""
    uri = lake.table("gold", "evaluation")
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


def recommendations(settings: PodrecSettings, calendar: Calendar) -> AssetsDefinition:
    @asset(
        key=["gold", "recommendations"],
        group_name="gold",
        kinds={"spark", "delta"},
        owners=["team:podrec"],
        partitions_def=calendar.daily,
        deps=[
            ["gold", "als_factors"],
            AssetDep(ENGAGEMENT, partition_mapping=calendar.model_window),
            ["silver", "episodes"],
            ["gold", "episode_similarity"],
            # ``auto`` cold start reads the newest evaluation of the lookback.
            AssetDep(
                ["gold", "evaluation"],
                partition_mapping=TimeWindowPartitionMapping(
                    start_offset=partition_start_offset(EVALUATION_LOOKBACK_DAYS),
                    allow_nonexistent_upstream_partitions=True,
                ),
            ),
        ],
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
        context: AssetExecutionContext, spark: LazyPySparkResource, lake: LakeResource
    ) -> MaterializeResult:
        session = spark.spark_session
        day = date.fromisoformat(context.partition_key)
        factors = read_required(
            session, lake.table("gold", "als_factors"), "materialize gold/als_factors"
        ).where(F.col("model_date") == F.lit(day))
        first = factors.select("model_version").limit(1).collect()
        if not first:
            raise ValueError(f"no ALS factors for {day}: materialize gold/als_factors for that date first")
        version = first[0]["model_version"]
        engagement = read_required(session, lake.table(*ENGAGEMENT), "materialize silver/daily_engagement")
        interactions = window_interactions(engagement, day, settings.als.window_days).persist()
        index = build_episode_index(episode_stats(interactions), *content_inputs(session, lake))
        strategy, why = strategy_from_evaluation(
            settings.hybrid.cold_start, recent_evaluations(session, lake, day)
        )
        context.log.info(f"cold start: {strategy} ({why})")
        hybrid = with_cold_start(settings.hybrid, strategy)
        item_factors = ItemFactors.collect(factors.where(F.col("side") == "item"))
        items = ItemSide.build(index, item_factors.aligned(index.ids), hybrid)
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
        result = replace_partitions(out, lake.table("gold", "recommendations"), "rec_date", [day.isoformat()])
        interactions.unpersist()
        written = read(session, lake.table("gold", "recommendations")).where(F.col("rec_date") == F.lit(day))
        by_policy = {r["policy"]: r["count"] for r in written.groupBy("policy").count().collect()}
        preview = (
            written.where(~F.col("user_id").startswith(POPULAR_USER_PREFIX))
            .orderBy("user_id", "rank")
            .limit(10)
        )
        return MaterializeResult(
            metadata={
                **delta_write_metadata(
                    result, preview.select("user_id", "rank", "episode_id", "policy", "reason").toPandas()
                ),
                "users": written.where(~F.col("user_id").startswith(POPULAR_USER_PREFIX))
                .select("user_id")
                .distinct()
                .count(),
                "rows_by_policy": MetadataValue.json(by_policy),
                "model_version": version,
                "experiment_id": settings.ab.experiment_id,
                "cold_start": f"{strategy} ({why})",
            }
        )

    return gold_recommendations


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
    # Days of engagement read: unset = settings.evaluation.window_days; 0 = all (an imported log).
    window_days: int | None = None

    def als_overrides(self) -> dict[str, float | int]:
        chosen = {"alpha": self.alpha, "reg_param": self.reg_param, "rank": self.rank}
        return {k: v for k, v in chosen.items() if v is not None}


def evaluation(settings: PodrecSettings, calendar: Calendar) -> AssetsDefinition:
    @asset(
        key=["gold", "evaluation"],
        group_name="gold",
        kinds={"spark", "delta"},
        owners=["team:podrec"],
        partitions_def=calendar.daily,
        deps=[ENGAGEMENT, ["silver", "episodes"], ["gold", "episode_similarity"]],
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
    ) -> MaterializeResult:
        session = spark.spark_session
        day = date.fromisoformat(context.partition_key)
        window = settings.evaluation.window_days if config.window_days is None else config.window_days
        engagement = read_required(session, lake.table(*ENGAGEMENT), "materialize silver/daily_engagement")
        # Bounded by the window and a stable sample of listeners: a year of history costs what a window does.
        daily = evaluation_rows(engagement, day, window, settings.evaluation.max_users).toPandas()
        episodes, similarity = content_inputs(session, lake)
        als = settings.als.updated(**config.als_overrides())
        now = datetime.now(UTC)
        rows, reports, sweeps = [], {}, {}
        for protocol in config.protocols:
            result = evaluate(session, daily, protocol, config.k, als, settings.hybrid, episodes, similarity)
            reports[protocol] = json.loads(result.to_json())
            rows += result.table_rows(now, day)
            context.log.info(
                f"{protocol}: " + ", ".join(f"{p} ndcg {v['ndcg']}" for p, v in result.policies.items())
            )
            if config.sweep_alpha or config.sweep_reg_param or config.sweep_rank:
                grid = sweep(
                    session, daily, protocol, config.k, als, settings.hybrid, episodes, similarity,
                    alphas=config.sweep_alpha or [als.alpha],
                    reg_params=config.sweep_reg_param or [als.reg_param],
                    ranks=config.sweep_rank or [als.rank],
                )  # fmt: skip
                sweeps[protocol] = [json.loads(r.to_json()) for r in grid]
                rows += [row for r in grid for row in r.table_rows(now, day, tuned=True)]
        written = replace_partitions(
            session.createDataFrame(rows, schema=GOLD_EVALUATION), lake.table("gold", "evaluation"),
            "eval_date", [day.isoformat()],
        )  # fmt: skip
        return MaterializeResult(
            metadata={
                **delta_write_metadata(written),
                "report": MetadataValue.json(reports),
                "sweep": MetadataValue.json(sweeps),
                "summary": MetadataValue.md(summary_markdown(reports)),
            }
        )

    return gold_evaluation


def definitions(settings: PodrecSettings, calendar: Calendar) -> Definitions:
    evaluation_job = define_asset_job(
        "evaluation",
        selection=AssetSelection.assets(["gold", "evaluation"]),
        description="Offline evaluation of every policy on the engagement up to a date.",
    )

    @schedule(
        job=evaluation_job,
        cron_schedule="0 3 * * 1",
        execution_timezone="UTC",
        description="Mondays: the slower offline evaluation of every policy as of the day before.",
    )
    def weekly_evaluation_schedule(context: ScheduleEvaluationContext) -> RunRequest:
        # The partition comes from the tick's own time, never the clock, so a late tick evaluates the
        # day it was meant for; run_key makes a repeated tick a no-op.
        day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
        return RunRequest(run_key=f"evaluation-{day}", partition_key=day)

    return Definitions(
        assets=[
            als_factors(settings, calendar),
            recommendations(settings, calendar),
            evaluation(settings, calendar),
        ],
        jobs=[
            evaluation_job,
            define_asset_job(
                "recommendations",
                selection=AssetSelection.assets(*RECOMMENDER_ASSETS),
                description="A day's ALS model, every listener's list, published to MongoDB behind its gate.",
            ),
        ],
        schedules=[weekly_evaluation_schedule],
    )
