"""Bronze: data as it arrived — the episode snapshots, and the events and impressions topics landed
exactly once."""

from collections.abc import Iterator
from datetime import date

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    AssetSelection,
    AssetSpec,
    BackfillPolicy,
    Backoff,
    Config,
    Definitions,
    Jitter,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
    define_asset_job,
    multi_asset,
)
from dagster_pyspark import LazyPySparkResource

from podrec.content.podcastindex import EPISODE_COLUMNS
from podrec.ingest import impression_tables
from podrec.ingest.kafka_to_bronze import IngestReport, event_kind
from podrec.ingest.kafka_to_bronze import run as run_ingestion
from podrec.ingest.producer import produce_events
from podrec.ingest.simulator import event_type_counts, simulate
from podrec.lake.delta import replace_partitions
from podrec.lake.schemas import BRONZE_EPISODES
from podrec.privacy import Suppression
from podrec.settings import PodrecSettings
from podrec_assets.calendar import Calendar
from podrec_assets.metadata import delta_write_metadata
from resources import EpisodeSource, KafkaResource, LakeResource

EVENTS_TOPIC = ["kafka", "events"]
IMPRESSIONS_TOPIC = ["kafka", "impressions"]
INGESTION_RETRY = RetryPolicy(max_retries=3, delay=10, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)


def episodes(calendar: Calendar) -> AssetsDefinition:
    @asset(
        key=["bronze", "episodes"],
        group_name="bronze",
        kinds={"spark", "delta"},
        owners=["team:podrec"],
        partitions_def=calendar.daily,
        backfill_policy=BackfillPolicy.single_run(),
        retry_policy=RetryPolicy(
            max_retries=2, delay=5, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
        ),
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
        result = replace_partitions(
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

    return bronze_episodes


def events_topic(settings: PodrecSettings) -> AssetSpec:
    """The Kafka topic is an asset Dagster observes but does not write: any producer feeds it."""
    return AssetSpec(
        EVENTS_TOPIC,
        group_name="bronze",
        kinds={"kafka"},
        owners=["team:podrec"],
        deps=[["kafka", "simulated_events"]],
        description=(
            f"The events topic `{settings.kafka.events_topic}`: one JSON listening event per record "
            "(docs/wire-formats.md), from any producer — a tracking SDK, kcat, `podrec import-events`, "
            "or the simulator. Dagster does not write it; bronze/user_events consumes it."
        ),
        metadata={"topic": settings.kafka.events_topic, "bootstrap": settings.kafka.bootstrap},
    )


class UserEventsConfig(Config):
    """Leave empty to consume what is new; set ``replay_day`` to rebuild that event_date from Kafka —
    refused when the topic no longer holds all of the day, unless ``force_replay``."""

    replay_day: str | None = None
    force_replay: bool = False


def ingestion_results(
    report: IngestReport, config: UserEventsConfig, lake: LakeResource, accepted: list[str]
) -> Iterator[MaterializeResult]:
    """The two results of an ingestion: ``accepted`` and its ``…_rejected`` table, with the range read."""
    common = {
        "consumed": report.consumed,
        "offsets": MetadataValue.json({str(p): list(r) for p, r in report.offsets.items()}),
        "event_dates": ", ".join(report.event_dates) or "none",
        "mode": f"replay {config.replay_day}" if config.replay_day else "incremental",
    }
    rejected = [*accepted[:-1], f"{accepted[-1]}_rejected"]
    yield MaterializeResult(
        asset_key=accepted,
        metadata={
            **common,
            "dagster/row_count": report.accepted,
            "already_ingested": report.already_ingested,
            "lost_to_retention": report.lost_to_retention,
            "path": MetadataValue.path(lake.table(*accepted)),
        },
    )
    yield MaterializeResult(
        asset_key=rejected,
        metadata={
            **common,
            "dagster/row_count": report.rejected,
            "reasons": MetadataValue.json(report.reasons),
            "path": MetadataValue.path(lake.table(*rejected)),
        },
    )


def user_events(settings: PodrecSettings) -> AssetsDefinition:
    @multi_asset(
        specs=[
            AssetSpec(
                ["bronze", "user_events"],
                group_name="bronze",
                kinds={"kafka", "spark", "delta"},
                owners=["team:podrec"],
                deps=[EVENTS_TOPIC],
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
                deps=[EVENTS_TOPIC],
                description=(
                    "Every consumed record that was not accepted, byte for byte, with the reason and "
                    "its Kafka coordinates. Accepted + rejected = consumed."
                ),
            ),
        ],
        retry_policy=INGESTION_RETRY,
        # Ingestions at once are safe (each bronze commit is fenced, podrec.ingest.kafka_to_bronze);
        # the pool, limited to 1 in the Dagster instance (docs/architecture.md), spares the work a refused
        # one redoes.
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
            kind=event_kind(settings.ingest.limits), suppression=Suppression(lake.root),
            force_replay=config.force_replay,
        )  # fmt: skip
        context.log.info(
            f"consumed {report.consumed}: accepted {report.accepted}, rejected {report.rejected}, "
            f"already ingested {report.already_ingested}"
        )
        yield from ingestion_results(report, config, lake, ["bronze", "user_events"])

    return bronze_user_events


def impressions_topic(settings: PodrecSettings) -> AssetSpec:
    """The lists the API served: written by the API (``api.recommendations``), observed, never written."""
    return AssetSpec(
        IMPRESSIONS_TOPIC,
        group_name="bronze",
        kinds={"kafka"},
        owners=["team:podrec"],
        description=(
            f"The impressions topic `{settings.kafka.impressions_topic}`: one JSON record per list the API "
            "served (docs/wire-formats.md, impressions), logged asynchronously by the API. "
            "bronze/impressions consumes it."
        ),
        metadata={"topic": settings.kafka.impressions_topic, "bootstrap": settings.kafka.bootstrap},
    )


def impressions(settings: PodrecSettings) -> AssetsDefinition:
    @multi_asset(
        specs=[
            AssetSpec(
                ["bronze", "impressions"],
                group_name="bronze",
                kinds={"kafka", "spark", "delta"},
                owners=["team:podrec"],
                deps=[IMPRESSIONS_TOPIC],
                description=(
                    "Every list the API served, exactly once, as it came off the impressions topic: "
                    "listener, serving version, experiment, bucket, policy, locale, the items with ranks "
                    "(and propensities where exploration was on), served_at; partitioned by the UTC date "
                    "served."
                ),
            ),
            AssetSpec(
                ["bronze", "impressions_rejected"],
                group_name="bronze",
                kinds={"kafka", "spark", "delta"},
                owners=["team:podrec"],
                deps=[IMPRESSIONS_TOPIC],
                description=(
                    "Every consumed impression record that was not accepted, byte for byte, with the reason "
                    "and its Kafka coordinates. Accepted + rejected = consumed."
                ),
            ),
        ],
        retry_policy=INGESTION_RETRY,
        pool="kafka_ingest",
    )
    def bronze_impressions(
        context: AssetExecutionContext,
        config: UserEventsConfig,
        spark: LazyPySparkResource,
        lake: LakeResource,
        kafka: KafkaResource,
    ) -> Iterator[MaterializeResult]:
        report = impression_tables.run(
            spark.spark_session, kafka, kafka.impressions_topic, lake.table("bronze", "impressions"),
            lake.table("bronze", "impressions_rejected"),
            date.fromisoformat(config.replay_day) if config.replay_day else None,
            kind=impression_tables.impression_kind(settings), suppression=Suppression(lake.root),
            force_replay=config.force_replay,
        )  # fmt: skip
        context.log.info(
            f"consumed {report.consumed} impressions: accepted {report.accepted}, "
            f"rejected {report.rejected}, already ingested {report.already_ingested}"
        )
        yield from ingestion_results(report, config, lake, ["bronze", "impressions"])

    return bronze_impressions


class SimulationConfig(Config):
    """How many listeners to simulate; the same seed and day always give the same events."""

    users: int = 2000
    seed: int = 42


def simulated_events(settings: PodrecSettings, calendar: Calendar) -> AssetsDefinition:
    @asset(
        key=["kafka", "simulated_events"],
        group_name="bronze",
        kinds={"kafka", "python"},
        owners=["team:podrec"],
        partitions_def=calendar.daily,
        deps=[["bronze", "episodes"]],
        description=(
            "A day of simulated listening (sessions, progress, pauses, skips, likes) produced to the "
            "events topic. Re-running a day re-sends the same event ids, which ingestion rejects as "
            "duplicates, so bronze.user_events never double-counts."
        ),
    )
    def kafka_simulated_events(
        context: AssetExecutionContext,
        config: SimulationConfig,
        kafka: KafkaResource,
        episode_source: EpisodeSource,
    ) -> MaterializeResult:
        day = date.fromisoformat(context.partition_key)
        catalog, _ = episode_source.snapshot(day)
        ((_, events),) = simulate(
            catalog, [day], config.users, epoch=settings.partitions.start, seed=config.seed
        )
        sent = produce_events(kafka.producer(), kafka.events_topic, events, total=len(events), progress=False)
        return MaterializeResult(
            metadata={
                "events": sent,
                "users_active": len({e["user_id"] for e in events}),
                "event_types": MetadataValue.json(event_type_counts(events)),
                "topic": kafka.events_topic,
            }
        )

    return kafka_simulated_events


def definitions(settings: PodrecSettings, calendar: Calendar) -> Definitions:
    bronze_daily_job = define_asset_job(
        "bronze_daily",
        selection=AssetSelection.assets(["bronze", "episodes"]),
        description="Land a day of raw data in the bronze layer.",
    )
    ingest_events_job = define_asset_job(
        "ingest_events",
        selection=AssetSelection.assets(
            ["bronze", "user_events"], ["bronze", "user_events_rejected"],
            ["bronze", "impressions"], ["bronze", "impressions_rejected"],
        ),
        description=(
            "Consume what is new on the events and impressions topics into bronze.user_events and "
            "bronze.impressions (exactly once)."
        ),
    )  # fmt: skip
    return Definitions(
        assets=[
            episodes(calendar),
            events_topic(settings),
            user_events(settings),
            impressions_topic(settings),
            impressions(settings),
            simulated_events(settings, calendar),
        ],
        jobs=[bronze_daily_job, ingest_events_job],
    )
