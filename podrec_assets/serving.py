"""Serving: the MongoDB export of a date, published as a new version behind gate checks."""

import itertools
from datetime import date

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    Config,
    Definitions,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import functions as F

from podrec.lake.delta import in_chunks, read_required
from podrec.privacy import Suppression, forget_in_store
from podrec.recsys.window import in_window
from podrec.serving.documents import episode_docs, recommendation_docs, similar_docs, variants_by_canonical
from podrec.serving.publish import publish
from podrec.settings import PodrecSettings
from podrec_assets.calendar import Calendar
from resources import LakeResource, MongoResource


class PublishConfig(Config):
    """Retention and gate threshold for one run, under their settings' names (``settings.publish``)."""

    retention: int | None = None
    min_share_of_previous: float | None = None


def serving_version(settings: PodrecSettings, calendar: Calendar) -> AssetsDefinition:
    @asset(
        key=["mongo", "serving_version"],
        group_name="serving",
        kinds={"mongodb", "python"},
        owners=["team:podrec"],
        partitions_def=calendar.daily,
        backfill_policy=BackfillPolicy.multi_run(1),
        deps=[
            ["gold", "recommendations"],
            ["gold", "episode_similarity"],
            ["silver", "episodes"],
            ["silver", "daily_engagement"],
        ],
        description=(
            "The date's lists, similar episodes and episode metadata (with language variants) written to "
            "MongoDB as a new version, indexed, checked, and only then made the one serving reads — in one "
            "atomic pointer switch. A failed gate leaves the previous version serving; older versions are "
            "kept for `podrec publish rollback` up to the retention. Serving only moves forward: a date "
            "older than the serving version's (a backfill) is staged, gated and kept, but held: only "
            "`podrec publish rollback` or `podrec publish activate --force` serves it."
        ),
    )
    def mongo_serving_version(
        context: AssetExecutionContext,
        config: PublishConfig,
        spark: LazyPySparkResource,
        lake: LakeResource,
        mongo: MongoResource,
    ) -> MaterializeResult:
        session = spark.spark_session
        day = date.fromisoformat(context.partition_key)
        knobs = settings.publish.updated(**{k: v for k, v in config.model_dump().items() if v is not None})
        guard = Suppression(lake.root).guard()
        recs = guard.keep(
            read_required(
                session, lake.table("gold", "recommendations"), "materialize gold/recommendations"
            ).where(F.col("rec_date") == F.lit(day))
        ).persist()
        episodes = read_required(
            session, lake.table("silver", "episodes"), "materialize silver/episodes"
        ).toPandas()
        engagement = read_required(
            session, lake.table("silver", "daily_engagement"), "materialize silver/daily_engagement"
        )
        # "Most played" is judged on the model window: recent, and bounded whatever the history.
        plays = dict(
            engagement.where(in_window("event_date", day, settings.als.window_days))
            .groupBy("episode_id")
            .agg(F.sum("plays").cast("long").alias("plays"))
            .toPandas()
            .itertuples(index=False, name=None)
        )
        similarity = read_required(
            session, lake.table("gold", "episode_similarity"), "materialize gold/episode_similarity"
        ).toPandas()
        variants = variants_by_canonical(episodes, plays)
        # The day's lists reach the driver a bounded chunk of whole listeners at a time.
        lists = (
            recommendation_docs(chunk, variants) for chunk in in_chunks(recs, "user_id", knobs.chunk_rows)
        )
        outcome = publish(
            mongo.db(), day.isoformat(), itertools.chain.from_iterable(lists),
            similar_docs(similarity, episodes, variants), episode_docs(episodes, variants),
            k=settings.hybrid.k, min_share_of_previous=knobs.min_share_of_previous, retention=knobs.retention,
            batch_size=knobs.batch_size, parallel_batches=knobs.parallel_batches,
        )  # fmt: skip
        metadata = {
            "version": outcome["version"],
            "active": outcome["active"] or "none",
            "previous": outcome["previous"] or "none",
            "counts": MetadataValue.json(outcome["counts"]),
            "held": outcome["held"] or "no",
            "pruned": ", ".join(outcome["pruned"]) or "none",
            "seconds": MetadataValue.json({k: round(v, 3) for k, v in outcome["seconds"].items()}),
            "lists_per_s": round(outcome["counts"]["recommendations"] / outcome["seconds"]["total"], 1),
            "database": mongo.database,
        }
        if not outcome["passed"]:
            raise Failure(
                description=f"version {outcome['version']} failed its gate "
                f"({', '.join(outcome['failures'])}); "
                f"{outcome['active']} keeps serving",
                metadata=metadata,
            )
        # A listener forgotten while this version was staged: their list goes from every version.
        for user_id in guard.late_listeners(recs):
            forget_in_store(mongo.db(), user_id)
        recs.unpersist()
        if outcome["held"]:
            context.log.warning(
                f"{outcome['version']} is staged and kept but not served: {outcome['held']}, which keeps "
                f"serving; `podrec publish activate {outcome['version']} --force` serves it"
            )
        else:
            context.log.info(f"serving {outcome['version']} (was {outcome['previous']})")
        return MaterializeResult(metadata=metadata)

    return mongo_serving_version


def definitions(settings: PodrecSettings, calendar: Calendar) -> Definitions:
    return Definitions(assets=[serving_version(settings, calendar)])
