"""Gold, recommender track: the day's ALS model, every listener's list, the offline evaluation, and
the weekly self-tuning.

Each asset is partitioned by day: the model, the lists, the evaluation and the tuning decision *for*
a date, so one day can be re-run or backfilled without touching another's version. The fit, the
lists and the evaluation use the setting the newest ``gold/tuning`` decision serves (unless
``PODREC_TUNING_PIN``), and say which and why in their metadata.
"""

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
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
    TimeWindowPartitionMapping,
    asset,
    define_asset_job,
)
from dagster_pyspark import LazyPySparkResource
from pydantic import Field
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from podrec.ids import POPULAR_USER_PREFIX
from podrec.lake.delta import exists, read, read_required, replace_partitions
from podrec.lake.schemas import GOLD_EVALUATION, GOLD_RECOMMENDATIONS, GOLD_TUNING
from podrec.privacy import Suppression, forget_late_in_model
from podrec.recsys.als import ItemFactors, factor_rows, fit, model_version, pool_variants, window_ratings
from podrec.recsys.bursts import TABLE as FLAGGED
from podrec.recsys.bursts import held_out_in_lake, without_held_out
from podrec.recsys.cold_start import EVALUATION_LOOKBACK_DAYS, strategy_from_evaluation
from podrec.recsys.evaluation import (
    DEFAULT_PROTOCOLS,
    Bench,
    canonical_map,
    evaluate,
    evaluation_rows,
    split_train_test,
    summary_markdown,
)
from podrec.recsys.hybrid import ItemSide, with_cold_start
from podrec.recsys.scoring import (
    build_episode_index,
    episode_stats,
    recommend_in_spark,
    user_frame,
    window_interactions,
    with_popular_lists,
)
from podrec.recsys.tuning import Setting, serving_setting, sweep
from podrec.recsys.window import partition_start_offset
from podrec.settings import AlsSettings, HybridSettings, PodrecSettings
from podrec_assets.calendar import Calendar
from podrec_assets.metadata import delta_write_metadata
from resources import LakeResource

ENGAGEMENT = ["silver", "daily_engagement"]
TUNING = ["gold", "tuning"]
RECOMMENDER_ASSETS = (["gold", "als_factors"], ["gold", "recommendations"], ["mongo", "serving_version"])
# The newest tuning decision serves until the next: the edge shows the lookback where the weekly one lands.
TUNING_LOOKBACK = TimeWindowPartitionMapping(
    start_offset=partition_start_offset(EVALUATION_LOOKBACK_DAYS), allow_nonexistent_upstream_partitions=True
)


def latest_tuning(session: SparkSession, lake: LakeResource, day: date) -> dict | None:
    """The newest gold.tuning decision on or before ``day`` (its row), None before the first."""
    uri = lake.table(*TUNING)
    if not exists(session, uri):
        return None
    rows = read(session, uri).where(F.col("tuned_date") <= F.lit(day)).orderBy(F.desc("tuned_date")).limit(1)
    found = rows.collect()
    return found[0].asDict() if found else None


def setting_for(
    settings: PodrecSettings, session: SparkSession, lake: LakeResource, day: date
) -> tuple[AlsSettings, HybridSettings, str]:
    """The ALS and list settings that serve ``day``, and why (podrec.recsys.tuning.serving_setting)."""
    return serving_setting(settings.als, settings.hybrid, settings.tuning, latest_tuning(session, lake, day))


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
        deps=[
            AssetDep(ENGAGEMENT, partition_mapping=calendar.model_window),
            AssetDep(list(FLAGGED), partition_mapping=calendar.model_window),
            ["silver", "episodes"],
            AssetDep(TUNING, partition_mapping=TUNING_LOOKBACK),
        ],
        backfill_policy=BackfillPolicy.multi_run(1),  # one model per date, each its own run
        retry_policy=RetryPolicy(max_retries=1, delay=30),
        description=(
            "User and episode factors of Spark ML ALS (implicitPrefs; alpha, regParam and rank from the "
            "newest accepted gold/tuning setting, else the settings) fitted on the trailing window of daily "
            "engagement ending on the partition's date, language variants pooled: the item side is one row "
            "per canonical episode; listeners flagged in silver/flagged_listeners on a day of the window "
            "are left out. The fitted pipeline (id indexers + ALS) is saved beside it under "
            "als_models/<date>, one version per date."
        ),
    )
    def gold_als_factors(
        context: AssetExecutionContext, config: AlsRunConfig, spark: LazyPySparkResource, lake: LakeResource
    ) -> MaterializeResult:
        session = spark.spark_session
        day = date.fromisoformat(context.partition_key)
        tuned, _, why = setting_for(settings, session, lake, day)
        als = tuned.updated(**config.overrides())
        if config.overrides():
            why = f"run config {config.overrides()} over: {why}"
        guard = Suppression(lake.root).guard()
        engagement = guard.keep(
            read_required(session, lake.table(*ENGAGEMENT), "materialize silver/daily_engagement")
        )
        canonical = None
        if als.pool_variants and exists(session, lake.table("silver", "episodes")):
            canonical = read(session, lake.table("silver", "episodes"))
        # Coordinated plays stay in the lake but out of the fit (podrec/recsys/bursts.py).
        held = held_out_in_lake(session, lake.table(*FLAGGED), day, als.window_days)
        ratings = pool_variants(
            without_held_out(window_ratings(engagement, day, als.window_days), held), canonical
        ).persist()
        n_ratings = ratings.count()
        if n_ratings == 0:
            raise ValueError(f"no engagement in the {als.window_days} days ending {day}: nothing to fit")
        fitted = fit(ratings, als)
        version = model_version(als, day)
        model_uri = f"{lake.table('gold', 'als_models')}/model_date={day.isoformat()}"
        fitted.save(model_uri)
        rows = factor_rows(fitted, ratings, version, day)
        result = replace_partitions(rows, lake.table("gold", "als_factors"), "model_date", [day.isoformat()])
        if guard.sweep(session, lake.table("gold", "als_factors"), column="id", side=True):
            forget_late_in_model(model_uri, guard)
        fitted.release()
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
                "setting": f"alpha {als.alpha:g}, regParam {als.reg_param:g}, rank {als.rank}",
                "setting_why": why,
                "pooled_variants": als.pool_variants,
                "held_out_listeners": held.count() if held is not None else 0,
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
            .select(
                "episode_id",
                "canonical_episode_id",
                "feed_id",
                "language",
                "title",
                "published_at",
                "categories",
            )
            .toPandas()
        )
    if exists(session, lake.table("gold", "episode_similarity")):
        similarity = read(session, lake.table("gold", "episode_similarity")).toPandas()
    return episodes, similarity


def episode_vectors(session: SparkSession, lake: LakeResource) -> dict[str, np.ndarray]:
    """Transcript embeddings by episode (one per episode: the newest model's), for intra-list diversity
    in content terms; empty when the content track has not run (diversity then uses ALS factors)."""
    uri = lake.table("gold", "episode_embeddings")
    if not exists(session, uri):
        return {}
    rows = read(session, uri).select("episode_id", "model", "vector").toPandas()
    rows = rows.sort_values("model").drop_duplicates("episode_id", keep="last")
    return {
        e: np.asarray(v, dtype=np.float32) for e, v in zip(rows["episode_id"], rows["vector"], strict=True)
    }


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
            AssetDep(list(FLAGGED), partition_mapping=calendar.model_window),
            ["silver", "episodes"],
            ["gold", "episode_similarity"],
            AssetDep(TUNING, partition_mapping=TUNING_LOOKBACK),
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
            "(hybrid: ALS and content candidates and the next episode of shows they follow, scores "
            "normalised per user and blended, new episodes on warm-started factors, re-ranked for "
            "diversity; als_only: ALS alone), one variant per canonical episode in their language, at most "
            "a few per show, nothing they finished, and the reason for each row. Popularity and the "
            "cold-start weights leave out listeners flagged in silver/flagged_listeners (who still get a "
            f"list). Rows with user_id {POPULAR_USER_PREFIX}<language> are the fallback lists for new "
            "listeners."
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
        # Popularity and the cold-start weights count listeners: coordinated ones are not counted.
        held = held_out_in_lake(session, lake.table(*FLAGGED), day, settings.als.window_days)
        stats = episode_stats(without_held_out(interactions, held))
        index = build_episode_index(stats, *content_inputs(session, lake))
        als, tuned, setting_why = setting_for(settings, session, lake, day)
        strategy, why = strategy_from_evaluation(tuned.cold_start, recent_evaluations(session, lake, day))
        context.log.info(f"cold start: {strategy} ({why}); setting: {setting_why}")
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
        guard = Suppression(lake.root).guard()
        result = replace_partitions(
            guard.keep(out), lake.table("gold", "recommendations"), "rec_date", [day.isoformat()]
        )
        guard.sweep(session, lake.table("gold", "recommendations"))
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
                "setting": f"w_als {hybrid.als_weight:g}, rerank {hybrid.rerank_weight:g}, "
                f"follow {hybrid.follow_weight:g}",
                "setting_why": setting_why,
            }
        )

    return gold_recommendations


class EvaluationConfig(Config):
    """Which protocols (podrec's two by default; ``published`` by name), K, and ALS overrides."""

    protocols: list[str] = Field(default_factory=lambda: list(DEFAULT_PROTOCOLS))
    k: int = 10
    alpha: float | None = None
    reg_param: float | None = None
    rank: int | None = None
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
        deps=[
            ENGAGEMENT,
            ["silver", "episodes"],
            ["gold", "episode_similarity"],
            ["gold", "episode_embeddings"],
            AssetDep(TUNING, partition_mapping=TUNING_LOOKBACK),
        ],
        backfill_policy=BackfillPolicy.multi_run(1),
        description=(
            "Offline evaluation of the serving setting on the engagement up to the date: every policy "
            "(hybrid, als_only, content_only, popular, random) at K under the time split and the per-user "
            "stratified 75/25 split (and the published protocol when asked) — precision, recall, NDCG, MAP, "
            "hit rate, coverage, novelty, diversity, category calibration, cold-start and new-variant "
            "recall — plus NDCG and new-episode recall per cold-start strategy, the hybrid without the "
            "followed-show source (hybrid:no_follow) and the re-ranking trade-off (hybrid:rerank=<weight>)."
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
        vectors = episode_vectors(session, lake)
        tuned_als, hybrid, why = setting_for(settings, session, lake, day)
        als = tuned_als.updated(**config.als_overrides())
        now = datetime.now(UTC)
        rows, reports = [], {}
        for protocol in config.protocols:
            result = evaluate(session, daily, protocol, config.k, als, hybrid, episodes, similarity, vectors)
            reports[protocol] = json.loads(result.to_json())
            rows += result.table_rows(now, day)
            context.log.info(
                f"{protocol}: " + ", ".join(f"{p} ndcg {v['ndcg']}" for p, v in result.policies.items())
            )
        written = replace_partitions(
            session.createDataFrame(rows, schema=GOLD_EVALUATION), lake.table("gold", "evaluation"),
            "eval_date", [day.isoformat()],
        )  # fmt: skip
        return MaterializeResult(
            metadata={
                **delta_write_metadata(written),
                "report": MetadataValue.json(reports),
                "summary": MetadataValue.md(summary_markdown(reports)),
                "setting_why": why if not config.als_overrides() else f"run config over: {why}",
            }
        )

    return gold_evaluation


class TuningConfig(Config):
    """Override the sweep's grid (``settings.tuning``) for one run, under the same names."""

    protocol: str | None = None
    alphas: list[float] | None = None
    reg_params: list[float] | None = None
    ranks: list[int] | None = None
    als_weights: list[float] | None = None
    rerank_weights: list[float] | None = None
    # Days of engagement read: unset = settings.evaluation.window_days; 0 = all (an imported log).
    window_days: int | None = None

    def overrides(self) -> dict:
        return {k: v for k, v in self.model_dump().items() if v is not None and k != "window_days"}


def tuning(settings: PodrecSettings, calendar: Calendar) -> AssetsDefinition:
    @asset(
        key=TUNING,
        group_name="gold",
        kinds={"spark", "delta"},
        owners=["team:podrec"],
        partitions_def=calendar.daily,
        deps=[
            ENGAGEMENT,
            ["silver", "episodes"],
            ["gold", "episode_similarity"],
            ["gold", "episode_embeddings"],
            # The setting serving before this decision: the previous week's.
            AssetDep(
                TUNING,
                partition_mapping=TimeWindowPartitionMapping(
                    start_offset=partition_start_offset(EVALUATION_LOOKBACK_DAYS) - 1,
                    end_offset=-1,
                    allow_nonexistent_upstream_partitions=True,
                ),
            ),
        ],
        backfill_policy=BackfillPolicy.multi_run(1),
        description=(
            "The week's tuning decision: ALS alpha, regParam and rank, the hybrid's w_als and the re-ranking "
            "weight swept on the held-out days of the time split, beside the setting serving now on the same "
            "days. The best challenger serves from this date only if its NDCG@K beats the serving one by "
            "the margin (PODREC_TUNING_MARGIN); `serving` is the setting the fit and the lists use next."
        ),
    )
    def gold_tuning(
        context: AssetExecutionContext, config: TuningConfig, spark: LazyPySparkResource, lake: LakeResource
    ) -> MaterializeResult:
        session = spark.spark_session
        day = date.fromisoformat(context.partition_key)
        grid = settings.tuning.updated(**config.overrides())
        window = settings.evaluation.window_days if config.window_days is None else config.window_days
        engagement = read_required(session, lake.table(*ENGAGEMENT), "materialize silver/daily_engagement")
        daily = evaluation_rows(engagement, day, window, settings.evaluation.max_users).toPandas()
        episodes, similarity = content_inputs(session, lake)
        als, hybrid, why = setting_for(settings, session, lake, day - timedelta(days=1))
        hybrid = with_cold_start(hybrid)
        split_ = split_train_test(daily, grid.protocol, canonical=canonical_map(episodes))
        bench = Bench(session, split_, grid.k, episodes, similarity, episode_vectors(session, lake))
        try:
            decision = sweep(bench, als, hybrid, Setting.of(als, hybrid), grid)
        finally:
            bench.close()
        context.log.info(decision.reason)
        row = (
            grid.protocol, grid.k, grid.margin, decision.incumbent.to_json(), decision.challenger.to_json(),
            decision.serving.to_json(), decision.incumbent_ndcg, decision.challenger_ndcg, decision.accepted,
            decision.reason, json.dumps(decision.trials), len(split_.test), datetime.now(UTC), day,
        )  # fmt: skip
        written = replace_partitions(
            session.createDataFrame([row], schema=GOLD_TUNING), lake.table(*TUNING), "tuned_date",
            [day.isoformat()],
        )  # fmt: skip
        trials = pd.DataFrame(decision.trials)
        return MaterializeResult(
            metadata={
                **delta_write_metadata(written),
                "serving": decision.serving.label(),
                "accepted": decision.accepted,
                "reason": decision.reason,
                "incumbent": f"{decision.incumbent.label()} (served: {why})",
                "incumbent_ndcg": decision.incumbent_ndcg,
                "challenger_ndcg": decision.challenger_ndcg,
                "trials": MetadataValue.md(trials.to_markdown(index=False, floatfmt=".4f")),
                "protocol": grid.protocol,
                "users": len(split_.test),
            }
        )

    return gold_tuning


def definitions(settings: PodrecSettings, calendar: Calendar) -> Definitions:
    evaluation_job = define_asset_job(
        "evaluation",
        selection=AssetSelection.assets(["gold", "evaluation"]),
        description="Offline evaluation of every policy on the engagement up to a date.",
    )

    tuning_job = define_asset_job(
        "tuning",
        selection=AssetSelection.assets(TUNING),
        description="The weekly sweep and the acceptance rule: which setting the fit and the lists use next.",
    )

    return Definitions(
        assets=[
            als_factors(settings, calendar),
            recommendations(settings, calendar),
            evaluation(settings, calendar),
            tuning(settings, calendar),
        ],
        jobs=[
            evaluation_job,
            tuning_job,
            define_asset_job(
                "recommendations",
                selection=AssetSelection.assets(*RECOMMENDER_ASSETS),
                description="A day's ALS model, every listener's list, published to MongoDB behind its gate.",
            ),
        ],
    )
