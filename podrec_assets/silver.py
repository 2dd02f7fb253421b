"""Silver: cleaned, conformed tables — the episode catalog, transcripts, clean events, engagement."""

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    AssetSelection,
    BackfillPolicy,
    Backoff,
    Config,
    Definitions,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
    define_asset_job,
)
from dagster_pyspark import LazyPySparkResource
from pydantic import Field
from pyspark.sql import functions as F

from podrec.content.catalog import build_catalog
from podrec.content.transcripts import transcribe, transcribe_in_batches, transcript_rows
from podrec.ingest.impression_tables import served_items
from podrec.lake.delta import append, delete_where, exists, overwrite, read, read_required, replace_partitions
from podrec.lake.schemas import SILVER_IMPRESSIONS, SILVER_TRANSCRIPTS
from podrec.privacy import Suppression
from podrec.recsys.engagement import clean_events, engagement_by_day, engagement_stats
from podrec.settings import PodrecSettings
from podrec_assets.calendar import Calendar
from podrec_assets.metadata import delta_write_metadata
from resources import AudioCacheResource, LakeResource, VoskResource


def episodes() -> AssetsDefinition:
    @asset(
        key=["silver", "episodes"],
        group_name="silver",
        kinds={"spark", "delta"},
        owners=["team:podrec"],
        deps=[["bronze", "episodes"]],
        description=(
            "The current episode catalog: each episode's latest bronze snapshot, the day it was first "
            "seen, and its canonical_episode_id — shared by the language variants of one episode "
            "(same show and content, another language and feed; the rule is in podrec/content/canonical.py)."
        ),
    )
    def silver_episodes(
        context: AssetExecutionContext, spark: LazyPySparkResource, lake: LakeResource
    ) -> MaterializeResult:
        catalog = build_catalog(read(spark.spark_session, lake.table("bronze", "episodes")))
        # One overwrite commit: readers see the old catalog or the new one, never a mix.
        result = overwrite(catalog.frame, lake.table("silver", "episodes"))
        catalog.release()
        variants = catalog.variant_groups()
        preview = "\n".join(
            f"| {c} | {', '.join(f'{m} ({catalog.keys[m].language})' for m in members)} |"
            for c, members in sorted(variants.items())[:8]
        )
        context.log.info(f"silver.episodes: {len(catalog.keys)} episodes, {len(variants)} with variants")
        return MaterializeResult(
            metadata={
                **delta_write_metadata(result),
                "dagster/row_count": len(catalog.keys),
                "canonical_episodes": len(set(catalog.canonical.values())),
                "episodes_with_variants": len(variants),
                "variant_groups": MetadataValue.md("| canonical | variants |\n|---|---|\n" + preview),
            }
        )

    return silver_episodes


class TranscriptsConfig(Config):
    """Bounds for one run; transcribed episodes are skipped unless ``redo`` lists them."""

    max_audio_seconds: float = 3 * 3600
    commit_every_s: float = 60.0
    commit_max: int = 20_000
    redo: list[str] = Field(default_factory=list)


def transcripts() -> AssetsDefinition:
    @asset(
        key=["silver", "transcripts"],
        group_name="silver",
        kinds={"python", "delta"},
        owners=["team:podrec"],
        deps=[["silver", "episodes"]],
        retry_policy=RetryPolicy(max_retries=2, delay=30, backoff=Backoff.EXPONENTIAL),
        description=(
            "One transcript per episode and where it came from: Vosk speech-to-text of the audio "
            "(source vosk), else the publisher's transcript (publisher), else title and description "
            "(description); with audio length, processing time and why better sources were passed over."
        ),
    )
    def silver_transcripts(
        context: AssetExecutionContext,
        config: TranscriptsConfig,
        spark: LazyPySparkResource,
        lake: LakeResource,
        vosk: VoskResource,
        audio: AudioCacheResource,
    ) -> MaterializeResult:
        session = spark.spark_session
        uri = lake.table("silver", "transcripts")
        catalog = read(session, lake.table("silver", "episodes"))
        pending, done = catalog, 0
        if exists(session, uri):
            delete_where(session, uri, F.col("episode_id").isin(config.redo))
            transcribed = read(session, uri).select("episode_id")
            pending, done = catalog.join(transcribed, "episode_id", "left_anti"), transcribed.count()
        # Only what is new comes to the driver: the day's episodes, not the catalog.
        todo = [r.asDict() for r in pending.orderBy("episode_id").toLocalIterator()]
        context.log.info(f"silver.transcripts: {len(todo)} to transcribe, {done} already done")
        report = transcribe_in_batches(
            todo,
            lambda episode: transcribe(
                episode, vosk.model_for, audio.path, config.max_audio_seconds, audio=audio.limits()
            ),
            lambda batch: append(
                session.createDataFrame(transcript_rows(batch), schema=SILVER_TRANSCRIPTS), uri
            ),
            config.commit_every_s,
            config.commit_max,
            lambda i, n: context.log.info(f"silver.transcripts: {i}/{n} done"),
        )
        for episode_id, problems in report.problems.items():
            context.log.warning(f"{episode_id}: {'; '.join(problems)}")
        return MaterializeResult(
            metadata={
                "transcribed": report.transcribed,
                "skipped_already_done": done,
                "status": "cached" if not todo else "updated",
                "sources": MetadataValue.json(report.sources),
                "episodes_with_problems": len(report.problems),
                "path": MetadataValue.path(uri),
            }
        )

    return silver_transcripts


def user_events(settings: PodrecSettings, calendar: Calendar) -> AssetsDefinition:
    @asset(
        key=["silver", "user_events"],
        group_name="silver",
        kinds={"spark", "delta"},
        owners=["team:podrec"],
        partitions_def=calendar.daily,
        backfill_policy=BackfillPolicy.single_run(),
        deps=[["bronze", "user_events"]],
        description=(
            "Listening events fit for modelling: bronze's accepted events minus positions past the end "
            "of the episode, client retries of one event under a new id, and bot-like user days. "
            "Dropped events stay in bronze; the counts by reason are in the metadata."
        ),
    )
    def silver_user_events(
        context: AssetExecutionContext, spark: LazyPySparkResource, lake: LakeResource
    ) -> MaterializeResult:
        days = list(context.partition_keys)
        bronze = read_required(
            spark.spark_session, lake.table("bronze", "user_events"), "ingest events first"
        )
        guard = Suppression(lake.root).guard()
        cleaned = clean_events(
            guard.keep(bronze.where(F.col("event_date").isin(days))),
            settings.engagement.bot_max_events_per_day,
        )
        result = replace_partitions(cleaned.kept, lake.table("silver", "user_events"), "event_date", days)
        guard.sweep(spark.spark_session, lake.table("silver", "user_events"))
        cleaned.release()
        context.log.info(
            f"silver.user_events: kept {result.rows_written} for {len(days)} day(s), "
            f"dropped {cleaned.dropped}"
        )
        return MaterializeResult(
            metadata={
                **delta_write_metadata(result),
                "dropped": MetadataValue.json(cleaned.dropped),
                "days": len(days),
            }
        )

    return silver_user_events


def daily_engagement(settings: PodrecSettings, calendar: Calendar) -> AssetsDefinition:
    @asset(
        key=["silver", "daily_engagement"],
        group_name="silver",
        kinds={"spark", "delta"},
        owners=["team:podrec"],
        partitions_def=calendar.daily,
        backfill_policy=BackfillPolicy.single_run(),
        deps=[["silver", "user_events"]],
        # The rules' values: a day built under other weights is out of date (podrec_app.runs reuses
        # only days built under these).
        code_version=settings.engagement.fingerprint(),
        description=(
            "One row per listener, episode and day: plays, listening time, furthest point, likes, skips, "
            "early skip, and the signed engagement score ALS learns from (implicit feedback: preference "
            "engaged-or-not, confidence from how strongly; an early skip is a confident negative)."
        ),
    )
    def silver_daily_engagement(
        context: AssetExecutionContext, spark: LazyPySparkResource, lake: LakeResource
    ) -> MaterializeResult:
        days = list(context.partition_keys)
        events = read_required(
            spark.spark_session, lake.table("silver", "user_events"), "materialize silver/user_events"
        )
        guard = Suppression(lake.root).guard()
        engagement = engagement_by_day(
            guard.keep(events.where(F.col("event_date").isin(days))), settings.engagement
        ).persist()
        result = replace_partitions(engagement, lake.table("silver", "daily_engagement"), "event_date", days)
        guard.sweep(spark.spark_session, lake.table("silver", "daily_engagement"))
        stats = engagement_stats(engagement)
        preview = engagement.orderBy(F.desc("engagement")).limit(5).toPandas()
        engagement.unpersist()
        return MaterializeResult(
            metadata={
                **delta_write_metadata(result, preview),
                **stats,
                "weights": MetadataValue.json(settings.engagement.model_dump()),
            }
        )

    return silver_daily_engagement


def impressions(calendar: Calendar) -> AssetsDefinition:
    @asset(
        key=["silver", "impressions"],
        group_name="silver",
        kinds={"spark", "delta"},
        owners=["team:podrec"],
        partitions_def=calendar.daily,
        backfill_policy=BackfillPolicy.single_run(),
        deps=[["bronze", "impressions"]],
        description=(
            "What listeners were shown: one row per served item (impression, rank, episode, propensity "
            "where exploration was on) with the list's listener, arm, bucket, experiment and serving "
            "version; each impression once. The A/B readout joins plays to it."
        ),
    )
    def silver_impressions(
        context: AssetExecutionContext, spark: LazyPySparkResource, lake: LakeResource
    ) -> MaterializeResult:
        days = list(context.partition_keys)
        session, uri = spark.spark_session, lake.table("bronze", "impressions")
        guard = Suppression(lake.root).guard()
        # No API has served yet (the topic was never written): the days hold no impressions, not an error.
        items = guard.keep(
            served_items(read(session, uri).where(F.col("event_date").isin(days)))
            if exists(session, uri)
            else session.createDataFrame([], SILVER_IMPRESSIONS)
        ).persist()
        result = replace_partitions(items, lake.table("silver", "impressions"), "event_date", days)
        guard.sweep(session, lake.table("silver", "impressions"))
        lists = items.select("impression_id").distinct().count()
        items.unpersist()
        context.log.info(f"silver.impressions: {lists} lists, {result.rows_written} items for {days}")
        return MaterializeResult(
            metadata={**delta_write_metadata(result), "impressions": lists, "days": len(days)}
        )

    return silver_impressions


def definitions(settings: PodrecSettings, calendar: Calendar) -> Definitions:
    return Definitions(
        assets=[
            episodes(),
            transcripts(),
            user_events(settings, calendar),
            daily_engagement(settings, calendar),
            impressions(calendar),
        ],
        jobs=[
            define_asset_job(
                "episode_catalog",
                selection=AssetSelection.assets(["silver", "episodes"]),
                description="Rebuild the current episode catalog with its canonical (language-variant) ids.",
            ),
            define_asset_job(
                "engagement",
                selection=AssetSelection.assets(["silver", "user_events"], ["silver", "daily_engagement"]),
                description="Clean a day's (or a range's) events and score the day's engagement.",
            ),
        ],
    )
