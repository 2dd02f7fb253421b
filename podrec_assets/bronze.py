"""Bronze: data as it arrived, one Delta table per source, partitioned by arrival day."""

from collections.abc import Iterator
from datetime import date

from dagster import (
    AssetExecutionContext,
    AssetSpec,
    BackfillPolicy,
    Backoff,
    Config,
    Jitter,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
    multi_asset,
)
from dagster_pyspark import LazyPySparkResource

from podrec.content.podcastindex import EPISODE_COLUMNS
from podrec.ingest.kafka_to_bronze import run as run_ingestion
from podrec.ingest.producer import produce_events
from podrec.ingest.simulator import simulate
from podrec.lake.delta import replace_partition
from podrec.lake.schemas import BRONZE_EPISODES
from podrec_assets.calendar import daily_partitions
from podrec_assets.metadata import delta_write_metadata
from resources import EpisodeSource, KafkaResource, LakeResource


@asset(
    key=["bronze", "episodes"],
    group_name="bronze",
    kinds={"spark", "delta"},
    owners=["team:podrec"],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    retry_policy=RetryPolicy(max_retries=2, delay=5),
    description=(
        "One snapshot per day of the episodes of trending podcasts, as PodcastIndex (or the "
        "bundled sample catalog) listed them: one row per episode and ingest_date, languages "
        "normalised (pt-BR → pt), nothing merged or cleaned yet."
    ),
)
def bronze_episodes(
    context: AssetExecutionContext,
    spark: LazyPySparkResource,
    lake: LakeResource,
    episode_source: EpisodeSource,
) -> MaterializeResult:
    days = [date.fromisoformat(key) for key in context.partition_keys]
    rows, skipped = [], {}
    for day in days:
        day_rows, report = episode_source.snapshot(day)
        rows.extend(day_rows)
        for reason, count in report.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + count
    df = spark.spark_session.createDataFrame(rows, schema=BRONZE_EPISODES)
    result = replace_partition(
        df, lake.table("bronze", "episodes"), "ingest_date", [d.isoformat() for d in days]
    )
    context.log.info(f"bronze.episodes: {result.rows_written} rows for {len(days)} day(s)")
    preview = df.select("episode_id", "feed_title", "language", "title").limit(5).toPandas()
    return MaterializeResult(
        metadata={
            **delta_write_metadata(result, preview),
            "days": len(days),
            "source": episode_source.source_name,
            "skipped": skipped or "none",
            "columns": ", ".join(EPISODE_COLUMNS),
        }
    )


class UserEventsConfig(Config):
    """Leave empty to consume what is new; set ``replay_day`` to rebuild that event_date from Kafka."""

    replay_day: str | None = None


@multi_asset(
    specs=[
        AssetSpec(
            ["bronze", "user_events"],
            group_name="bronze",
            kinds={"kafka", "spark", "delta"},
            owners=["team:podrec"],
            description=(
                "Every accepted listening event exactly once, as it came off the events topic, "
                "with its Kafka coordinates; partitioned by the UTC date the event occurred."
            ),
        ),
        AssetSpec(
            ["bronze", "user_events_rejected"],
            group_name="bronze",
            kinds={"kafka", "spark", "delta"},
            owners=["team:podrec"],
            description=(
                "Every consumed record that was not accepted, byte for byte, with the reason and its "
                "Kafka coordinates. Accepted + rejected = consumed."
            ),
        ),
    ],
    retry_policy=RetryPolicy(max_retries=3, delay=10, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS),
    # Two ingestions at once could both write a range before either commits its offsets:
    # give the `kafka_ingest` pool a limit of 1 in the Dagster instance (README).
    pool="kafka_ingest",
)
def bronze_user_events(
    context: AssetExecutionContext,
    config: UserEventsConfig,
    spark: LazyPySparkResource,
    lake: LakeResource,
    kafka: KafkaResource,
) -> Iterator[MaterializeResult]:
    report = run_ingestion(
        spark.spark_session, kafka, lake.table("bronze", "user_events"),
        lake.table("bronze", "user_events_rejected"),
        date.fromisoformat(config.replay_day) if config.replay_day else None,
    )  # fmt: skip
    context.log.info(
        f"consumed {report.consumed}: accepted {report.accepted}, rejected {report.rejected}, "
        f"already ingested {report.already_ingested}"
    )
    common = {
        "consumed": report.consumed,
        "offsets": MetadataValue.json({str(p): list(r) for p, r in report.offsets.items()}),
        "event_dates": ", ".join(report.event_dates) or "none",
        "mode": f"replay {config.replay_day}" if config.replay_day else "incremental",
    }
    yield MaterializeResult(
        asset_key=["bronze", "user_events"],
        metadata={
            **common,
            "dagster/row_count": report.accepted,
            "already_ingested": report.already_ingested,
            "lost_to_retention": report.lost_to_retention,
            "path": MetadataValue.path(lake.table("bronze", "user_events")),
        },
    )
    yield MaterializeResult(
        asset_key=["bronze", "user_events_rejected"],
        metadata={
            **common,
            "dagster/row_count": report.rejected,
            "reasons": MetadataValue.json(report.reasons),
            "path": MetadataValue.path(lake.table("bronze", "user_events_rejected")),
        },
    )


class SimulationConfig(Config):
    """How many listeners to simulate; the same seed and day always give the same events."""

    users: int = 2000
    seed: int = 42


@asset(
    key=["kafka", "simulated_events"],
    group_name="bronze",
    kinds={"kafka", "python"},
    owners=["team:podrec"],
    partitions_def=daily_partitions,
    deps=[bronze_episodes],
    description=(
        "A day of simulated listening (sessions, progress, pauses, skips, likes) produced to the "
        "events topic. Re-running a day re-sends the same event ids, which ingestion rejects as "
        "duplicates, so bronze.user_events never double-counts."
    ),
)
def simulated_events(
    context: AssetExecutionContext,
    config: SimulationConfig,
    kafka: KafkaResource,
    episode_source: EpisodeSource,
) -> MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    epoch = date.fromisoformat(daily_partitions.get_first_partition_key() or context.partition_key)
    catalog, _ = episode_source.snapshot(day)
    ((_, events),) = simulate(catalog, [day], config.users, epoch=epoch, seed=config.seed)
    sent = produce_events(kafka.producer(), kafka.events_topic, events, total=len(events), progress=False)
    counts: dict[str, int] = {}
    for e in events:
        counts[e["event_type"]] = counts.get(e["event_type"], 0) + 1
    return MaterializeResult(
        metadata={
            "events": sent,
            "users_active": len({e["user_id"] for e in events}),
            "event_types": MetadataValue.json(counts),
            "topic": kafka.events_topic,
        }
    )
