"""Gold, recommender track: the day's ALS model, every listener's list, the offline evaluation, and
the weekly self-tuning. Each asset calls one function of ``podrec.recsys.gold`` (read → compute →
write) and turns what it returns into metadata.

Each asset is partitioned by day: the model, the lists, the evaluation and the tuning decision *for*
a date, so one day can be re-run or backfilled without touching another's version. The fit, the
lists and the evaluation use the setting the newest ``gold/tuning`` decision serves (unless
``PODREC_TUNING_PIN``), and say which and why in their metadata.
"""

from datetime import date

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

from podrec.ids import POPULAR_USER_PREFIX
from podrec.recsys.bursts import TABLE as FLAGGED
from podrec.recsys.cold_start import EVALUATION_LOOKBACK_DAYS
from podrec.recsys.evaluation import DEFAULT_PROTOCOLS, summary_markdown
from podrec.recsys.gold import build_als_factors, build_evaluation, build_recommendations, build_tuning
from podrec.recsys.window import partition_start_offset
from podrec.settings import PodrecSettings
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
        day = date.fromisoformat(context.partition_key)
        built = build_als_factors(spark.spark_session, lake.root, day, settings, config.overrides())
        als = built.als
        context.log.info(f"ALS {built.version}: {built.users} users, {built.episodes} episodes")
        return MaterializeResult(
            metadata={
                **delta_write_metadata(built.written),
                "model_version": built.version,
                "model_path": MetadataValue.path(built.model_uri),
                "users": built.users,
                "episodes": built.episodes,
                "ratings": built.ratings,
                "params": MetadataValue.json(als.model_dump()),
                "setting": f"alpha {als.alpha:g}, regParam {als.reg_param:g}, rank {als.rank}",
                "setting_why": built.why,
                "pooled_variants": als.pool_variants,
                "held_out_listeners": built.held_out_listeners,
            }
        )

    return gold_als_factors


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
        day = date.fromisoformat(context.partition_key)
        built = build_recommendations(spark.spark_session, lake.root, day, settings, context.log.info)
        hybrid = built.hybrid
        return MaterializeResult(
            metadata={
                **delta_write_metadata(built.written, built.preview),
                "users": built.users,
                "rows_by_policy": MetadataValue.json(built.rows_by_policy),
                "model_version": built.version,
                "experiment_id": settings.ab.experiment_id,
                "cold_start": built.cold_start,
                "setting": f"w_als {hybrid.als_weight:g}, rerank {hybrid.rerank_weight:g}, "
                f"follow {hybrid.follow_weight:g}",
                "setting_why": built.why,
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
        window = settings.evaluation.window_days if config.window_days is None else config.window_days
        built = build_evaluation(
            spark.spark_session, lake.root, date.fromisoformat(context.partition_key), settings,
            protocols=config.protocols, k=config.k, window_days=window, als_overrides=config.als_overrides(),
            log=context.log.info,
        )  # fmt: skip
        return MaterializeResult(
            metadata={
                **delta_write_metadata(built.written),
                "report": MetadataValue.json(built.reports),
                "summary": MetadataValue.md(summary_markdown(built.reports)),
                "setting_why": built.why,
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
        window = settings.evaluation.window_days if config.window_days is None else config.window_days
        built = build_tuning(
            spark.spark_session, lake.root, date.fromisoformat(context.partition_key), settings,
            grid=settings.tuning.updated(**config.overrides()), window_days=window,
        )  # fmt: skip
        decision = built.decision
        context.log.info(decision.reason)
        trials = pd.DataFrame(decision.trials)
        return MaterializeResult(
            metadata={
                **delta_write_metadata(built.written),
                "serving": decision.serving.label(),
                "accepted": decision.accepted,
                "reason": decision.reason,
                "incumbent": f"{decision.incumbent.label()} (served: {built.why})",
                "incumbent_ndcg": decision.incumbent_ndcg,
                "challenger_ndcg": decision.challenger_ndcg,
                "trials": MetadataValue.md(trials.to_markdown(index=False, floatfmt=".4f")),
                "protocol": built.grid.protocol,
                "users": built.users,
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
