"""What the command line starts: ingestion, and the Dagster runs an offline evaluation or tuning needs.

``podrec evaluate`` (``podrec tune``) works on a fresh lake: it ingests what waits on the topic,
materializes silver/user_events and silver/daily_engagement for the days that need it (one run per
range of days), then materializes gold/evaluation (gold/tuning) for the last day and returns its
report (its decision). A day needs it when its engagement was never materialized, was built under other
engagement rules (the asset's code version), or bronze received events for it since: a second
``evaluate`` or a ``tune`` on the same lake goes straight to its sweep,
without re-building and re-checking what is already built and checked. An imported log
may predate the configured partitions: the definitions are then built with partitions that begin
where the data does (a copy of the settings, never the environment).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from podrec.settings import PodrecSettings

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from podrec.ingest.kafka_to_bronze import IngestReport
    from resources import KafkaResource


def last_complete_day() -> date:
    """Yesterday in UTC: the newest day whose data can be complete."""
    return datetime.now(UTC).date() - timedelta(days=1)


class NothingToEvaluate(RuntimeError):
    """No events in the lake or on the topic; the message starts "nothing to evaluate"."""


class RunFailed(RuntimeError):
    """A Dagster run podrec started did not succeed; the message names it and its run id."""


def event_date_range(settings: PodrecSettings) -> tuple[date, date]:
    """First and last event_date in bronze.user_events (read through delta-rs, no JVM)."""
    from podrec.lake.duck import open_lake

    views = open_lake(settings.lake.root, {"events": ("bronze", "user_events")}, missing_ok=True)
    first, last = (None, None)
    if views.has("events"):
        first, last = views.sql("SELECT min(event_date), max(event_date) FROM events").fetchone()
    if first is None:
        raise NothingToEvaluate(
            "nothing to evaluate: bronze.user_events holds no events; run `podrec simulate` or "
            "`podrec import-events PATH` first"
        )
    return first, last


def waiting_on_topic(kafka: KafkaResource) -> int:
    """Events the ingestion group has not consumed yet (0 for a topic nobody has written to)."""
    from podrec.ingest.kafka_offsets import group_offsets

    consumer = kafka.consumer()
    try:
        if kafka.events_topic not in consumer.list_topics(timeout=kafka.timeout_s).topics:
            return 0
        return sum(p.lag for p in group_offsets(consumer, kafka.events_topic, kafka.timeout_s))
    finally:
        consumer.close()


def ingest_pending(settings: PodrecSettings, replay: date | None = None, force: bool = False) -> IngestReport:
    """Consume what waits on the topic into bronze (or rebuild ``replay``'s event_date).

    The broker must answer within ``kafka.timeout_s``, and Spark starts only when there is work:
    with the broker away or nothing new, the answer comes in seconds."""
    from dagster_pyspark.resources import spark_session_from_config

    from podrec.ingest import kafka_to_bronze
    from podrec.lake.paths import table_uri
    from podrec.lake.spark import spark_conf
    from podrec.privacy import Suppression
    from resources import build_resources

    kafka = build_resources(settings)["kafka"]
    kafka.require_broker()
    if replay is None and waiting_on_topic(kafka) == 0:
        return kafka_to_bronze.IngestReport()
    spark = spark_session_from_config(spark_conf(settings, app_name="podrec"))
    return kafka_to_bronze.run(
        spark, kafka, table_uri(settings.lake.root, "bronze", "user_events"),
        table_uri(settings.lake.root, "bronze", "user_events_rejected"), replay,
        kind=kafka_to_bronze.event_kind(settings.ingest.limits),
        suppression=Suppression(settings.lake.root), force_replay=force,
    )  # fmt: skip


def evaluate(
    settings: PodrecSettings, evaluation_config: dict[str, Any], ingest: bool = True
) -> dict[str, Any]:
    """Ingest, build engagement for every event day, evaluate as of the last; the asset's report."""
    metadata, run_id = _last_day_run(settings, "evaluation", "gold__evaluation", evaluation_config, ingest)
    return {
        "report": metadata["report"].value,
        "setting_why": metadata["setting_why"].value,
        "run_id": run_id,
    }


def tune(settings: PodrecSettings, tuning_config: dict[str, Any], ingest: bool = True) -> dict[str, Any]:
    """Ingest, build engagement, run the tuning sweep and its acceptance rule as of the last day: the
    decision serves the evaluations and fits from that day on."""
    metadata, run_id = _last_day_run(settings, "tuning", "gold__tuning", tuning_config, ingest)
    return {name: value.value for name, value in metadata.items()} | {"run_id": run_id}


def stale_ranges(
    days: Iterable[date], written: Mapping[date, datetime], built: Mapping[date, datetime]
) -> list[tuple[date, date]]:
    """The runs of consecutive ``days`` whose engagement must be (re)built: never built, or built
    before bronze last received a file for that day."""
    stale = sorted(d for d in days if d not in built or (d in written and written[d] > built[d]))
    ranges: list[tuple[date, date]] = []
    for day in stale:
        if ranges and ranges[-1][1] == day - timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def engagement_built_at(instance: DagsterInstance, days: list[date], rules: str) -> dict[date, datetime]:
    """When each day's silver/daily_engagement was last materialized under the engagement ``rules``
    (their fingerprint, the asset's code version); days never built under them are absent."""
    from dagster import AssetKey, AssetRecordsFilter
    from dagster._core.definitions.data_version import CODE_VERSION_TAG

    built: dict[date, datetime] = {}
    seen: set[date] = set()
    records_filter = AssetRecordsFilter(
        asset_key=AssetKey(["silver", "daily_engagement"]), asset_partitions=[d.isoformat() for d in days]
    )
    cursor = None
    while True:
        page = instance.fetch_materializations(records_filter, limit=1000, cursor=cursor)
        for record in page.records:
            day = date.fromisoformat(record.partition_key)
            if day in seen:  # newest first: only a day's last build counts
                continue
            seen.add(day)
            tags = (record.asset_materialization.tags if record.asset_materialization else None) or {}
            if tags.get(CODE_VERSION_TAG) == rules:  # built under other rules: out of date
                built[day] = datetime.fromtimestamp(record.timestamp, tz=UTC)
        if not page.has_more:
            return built
        cursor = page.cursor


def _last_day_run(
    settings: PodrecSettings, job: str, op: str, config: dict[str, Any], ingest: bool
) -> tuple[dict[str, Any], str]:
    """Engagement for the event days that need it (one run per range), then ``job`` for the last
    complete day; its materialization's metadata and the run id."""
    from dagster import DagsterInstance

    from podrec.lake.tables import partitions_written_at
    from podrec_assets.calendar import partition_range_tags
    from podrec_assets.definitions import build_definitions

    if ingest:
        ingest_pending(settings)
    first, last = event_date_range(settings)
    if first < settings.partitions.start:
        settings = settings.with_(partitions={"start": first})
    defs = build_definitions(settings)
    # Today's partition does not exist until the day is over: use the last complete day.
    last_key = defs.resolve_job_def(job).partitions_def.get_last_partition_key()
    last = min(last, date.fromisoformat(last_key))
    if last < first:
        raise NothingToEvaluate(
            f"nothing to evaluate: every event is from {first}, a day that is not over yet"
        )
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    with DagsterInstance.get() as instance:
        written = partitions_written_at(settings.lake.root, "bronze/user_events")
        built = engagement_built_at(instance, days, settings.engagement.fingerprint())
        for start, end in stale_ranges(days, written, built):
            engagement = defs.resolve_job_def("engagement").execute_in_process(
                instance=instance, tags=partition_range_tags(start.isoformat(), end.isoformat())
            )
            if not engagement.success:
                raise RunFailed(f"the engagement run failed (run id {engagement.run_id})")
        run = defs.resolve_job_def(job).execute_in_process(
            instance=instance, partition_key=last.isoformat(), run_config={"ops": {op: {"config": config}}}
        )
        if not run.success:
            raise RunFailed(f"the {job} run failed (run id {run.run_id})")
    (event,) = run.get_asset_materialization_events()
    return dict(event.materialization.metadata), run.run_id
