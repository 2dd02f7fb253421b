"""Silver: cleaned, conformed tables built from bronze."""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    Backoff,
    Config,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)
from dagster_pyspark import LazyPySparkResource
from delta.tables import DeltaTable
from pydantic import Field
from pyspark.sql import Window
from pyspark.sql import functions as F

from podrec.content.canonical import EpisodeKey, canonical_ids
from podrec.content.transcripts import Transcript, transcribe
from podrec.lake.delta import read_delta, read_required, replace_partition
from podrec.lake.schemas import CANONICAL_IDS, SILVER_TRANSCRIPTS
from podrec.recsys.engagement import clean_events, daily_engagement
from podrec_assets.bronze import bronze_episodes
from podrec_assets.calendar import daily_partitions
from podrec_assets.metadata import delta_write_metadata
from resources import AudioCacheResource, LakeResource, RecommenderResource, VoskResource


@asset(
    key=["silver", "episodes"],
    group_name="silver",
    kinds={"spark", "delta"},
    owners=["team:podrec"],
    deps=[bronze_episodes],
    description=(
        "The current episode catalog: each episode's latest bronze snapshot, the day it was first "
        "seen, and its canonical_episode_id — shared by the language variants of one episode "
        "(same show and content, another language and feed; the rule is in podrec/content/canonical.py)."
    ),
)
def silver_episodes(
    context: AssetExecutionContext, spark: LazyPySparkResource, lake: LakeResource
) -> MaterializeResult:
    session = spark.spark_session
    bronze = read_delta(session, lake.table("bronze", "episodes"))
    latest = Window.partitionBy("episode_id").orderBy(F.desc("ingest_date"))
    catalog = (
        bronze.withColumn("first_seen_date", F.min("ingest_date").over(Window.partitionBy("episode_id")))
        .withColumn("_rank", F.row_number().over(latest))
        .where("_rank = 1")
        .drop("_rank")
    ).persist()
    keys = [
        EpisodeKey(
            r.episode_id, r.feed_id, r.language, r.episode_number, r.season, r.published_at, r.duration_s
        )
        for r in catalog.select(
            "episode_id", "feed_id", "language", "episode_number", "season", "published_at", "duration_s"
        ).toLocalIterator()
    ]
    ids = canonical_ids(keys)
    mapping = session.createDataFrame(sorted(ids.items()), schema=CANONICAL_IDS)
    silver = catalog.join(mapping, "episode_id")
    uri = lake.table("silver", "episodes")
    # One overwrite commit: readers see the old catalog or the new one, never a mix.
    silver.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(uri)
    catalog.unpersist()

    groups: dict[str, list[str]] = {}
    for episode_id, canonical in ids.items():
        groups.setdefault(canonical, []).append(episode_id)
    variants = {c: sorted(m) for c, m in groups.items() if len(m) > 1}
    by_id = {k.episode_id: k for k in keys}
    preview = "\n".join(
        f"| {c} | {', '.join(f'{m} ({by_id[m].language})' for m in members)} |"
        for c, members in sorted(variants.items())[:8]
    )
    context.log.info(f"silver.episodes: {len(keys)} episodes, {len(variants)} with language variants")
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(keys),
            "canonical_episodes": len(groups),
            "episodes_with_variants": len(variants),
            "variant_groups": MetadataValue.md("| canonical | variants |\n|---|---|\n" + preview),
            "path": MetadataValue.path(uri),
        }
    )


class TranscriptsConfig(Config):
    """Bounds for one run; transcribed episodes are skipped unless ``redo`` lists them."""

    max_audio_seconds: float = 3 * 3600
    commit_every: int = 25
    redo: list[str] = Field(default_factory=list)


@asset(
    key=["silver", "transcripts"],
    group_name="silver",
    kinds={"python", "delta"},
    owners=["team:podrec"],
    deps=[silver_episodes],
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
    episodes = read_delta(session, lake.table("silver", "episodes"))
    done = set()
    if DeltaTable.isDeltaTable(session, uri):
        done = {r.episode_id for r in read_delta(session, uri).select("episode_id").collect()} - set(
            config.redo
        )
    todo = [r.asDict() for r in episodes.orderBy("episode_id").collect() if r.episode_id not in done]
    context.log.info(f"silver.transcripts: {len(todo)} to transcribe, {len(done)} already done")
    if config.redo and DeltaTable.isDeltaTable(session, uri):
        DeltaTable.forPath(session, uri).delete(F.col("episode_id").isin(config.redo))

    batch: list[Transcript] = []
    sources: dict[str, int] = {}
    problems = 0
    for i, episode in enumerate(todo, 1):
        result = transcribe(episode, vosk.model_for, audio.path, config.max_audio_seconds)
        batch.append(result)
        sources[result.source] = sources.get(result.source, 0) + 1
        problems += bool(result.problems)
        if result.problems:
            context.log.warning(f"{episode['episode_id']}: {'; '.join(result.problems)}")
        if len(batch) >= config.commit_every or i == len(todo):
            # Commit as we go: a crash keeps what was transcribed, and the re-run skips it.
            rows = [{k: v for k, v in t.__dict__.items() if k != "skipped"} for t in batch]
            session.createDataFrame(rows, schema=SILVER_TRANSCRIPTS).write.format("delta").mode(
                "append"
            ).save(uri)
            context.log.info(f"silver.transcripts: {i}/{len(todo)} done")
            batch = []
    return MaterializeResult(
        metadata={
            "transcribed": len(todo),
            "skipped_already_done": len(done),
            "status": "cached" if not todo else "updated",
            "sources": MetadataValue.json(sources),
            "episodes_with_problems": problems,
            "path": MetadataValue.path(uri),
        }
    )


@asset(
    key=["silver", "user_events"],
    group_name="silver",
    kinds={"spark", "delta"},
    owners=["team:podrec"],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[AssetKey(["bronze", "user_events"])],
    description=(
        "Listening events fit for modelling: bronze's accepted events minus positions past the end "
        "of the episode, client retries of one event under a new id, and bot-like user days. "
        "Dropped events stay in bronze; the counts by reason are in the metadata."
    ),
)
def silver_user_events(
    context: AssetExecutionContext,
    spark: LazyPySparkResource,
    lake: LakeResource,
    recommender: RecommenderResource,
) -> MaterializeResult:
    days = list(context.partition_keys)
    bronze = read_required(spark.spark_session, lake.table("bronze", "user_events"), "ingest events first")
    cleaned = clean_events(bronze.where(F.col("event_date").isin(days)), recommender.bot_max_events_per_day)
    result = replace_partition(cleaned.kept, lake.table("silver", "user_events"), "event_date", days)
    cleaned.release()
    context.log.info(
        f"silver.user_events: kept {result.rows_written} for {len(days)} day(s), dropped {cleaned.dropped}"
    )
    return MaterializeResult(
        metadata={
            **delta_write_metadata(result),
            "dropped": MetadataValue.json(cleaned.dropped),
            "days": len(days),
        }
    )


@asset(
    key=["silver", "daily_engagement"],
    group_name="silver",
    kinds={"spark", "delta"},
    owners=["team:podrec"],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[silver_user_events],
    description=(
        "One row per listener, episode and day: plays, listening time, furthest point, likes, skips, "
        "early skip, and the signed engagement score ALS learns from (implicit feedback: preference "
        "engaged-or-not, confidence from how strongly; an early skip is a confident negative)."
    ),
)
def silver_daily_engagement(
    context: AssetExecutionContext,
    spark: LazyPySparkResource,
    lake: LakeResource,
    recommender: RecommenderResource,
) -> MaterializeResult:
    days = list(context.partition_keys)
    events = read_required(
        spark.spark_session, lake.table("silver", "user_events"), "materialize silver/user_events"
    )
    weights = recommender.engagement_weights()
    engagement = daily_engagement(events.where(F.col("event_date").isin(days)), weights).persist()
    result = replace_partition(engagement, lake.table("silver", "daily_engagement"), "event_date", days)
    stats = engagement.agg(
        F.avg((F.col("engagement") > 0).cast("double")).alias("positive"),
        F.avg(F.col("early_skip").cast("double")).alias("early_skips"),
        F.countDistinct("user_id").alias("users"),
    ).first()
    preview = engagement.orderBy(F.desc("engagement")).limit(5).toPandas()
    engagement.unpersist()
    return MaterializeResult(
        metadata={
            **delta_write_metadata(result, preview),
            "users": int(stats["users"] or 0),
            "share_positive": round(float(stats["positive"] or 0.0), 4),
            "share_early_skip": round(float(stats["early_skips"] or 0.0), 4),
            "weights": MetadataValue.json(weights.__dict__),
        }
    )
