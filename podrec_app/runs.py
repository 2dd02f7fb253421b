"""What the command line starts: ingestion, and the Dagster runs an offline evaluation needs.

``podrec evaluate`` works on a fresh lake: it ingests what waits on the topic, materializes
silver/user_events and silver/daily_engagement for every day that has events (one run over the
range), then materializes gold/evaluation for the last day and returns its report.
"""

from __future__ import annotations

import os
from datetime import date
from typing import TYPE_CHECKING, Any

from podrec.settings import PodrecSettings

if TYPE_CHECKING:
    from podrec.ingest.kafka_to_bronze import IngestReport


class NothingToEvaluate(RuntimeError):
    """No events in the lake or on the topic."""


def event_date_range(settings: PodrecSettings) -> tuple[date, date]:
    """First and last event_date in bronze.user_events (read through delta-rs, no JVM)."""
    import duckdb

    from podrec.lake.delta import duckdb_view, table_uri

    con = duckdb.connect()
    duckdb_view(con, "events", table_uri(settings.lake_root, "bronze", "user_events"))
    first, last = con.execute("SELECT min(event_date), max(event_date) FROM events").fetchone()
    if first is None:
        raise NothingToEvaluate("bronze.user_events is empty: simulate or import events first")
    return first, last


def ingest_pending(settings: PodrecSettings, replay: date | None = None) -> IngestReport:
    """Consume what waits on the topic into bronze (or rebuild ``replay``'s event_date)."""
    from dagster_pyspark.resources import spark_session_from_config

    from podrec.ingest import kafka_to_bronze as ingest
    from podrec.lake.spark import spark_conf
    from resources import build_resources

    resources = build_resources(settings)
    lake = resources["lake"]
    spark = spark_session_from_config(spark_conf(settings, app_name="podrec"))
    return ingest.run(
        spark, resources["kafka"], lake.table("bronze", "user_events"),
        lake.table("bronze", "user_events_rejected"), replay,
    )  # fmt: skip


def evaluate(
    settings: PodrecSettings, evaluation_config: dict[str, Any], ingest: bool = True
) -> dict[str, Any]:
    """Ingest, build engagement for every event day, evaluate as of the last; the asset's report."""
    from dagster import DagsterInstance
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    if ingest:
        ingest_pending(settings)
    first, last = event_date_range(settings)
    if first.isoformat() < settings.partitions_start:
        # An imported log may predate the configured partitions: they begin where the data does.
        os.environ["PODREC_PARTITIONS_START"] = first.isoformat()
    from podrec_assets.calendar import daily_partitions
    from podrec_assets.definitions import defs

    # Today's partition does not exist until the day is over: evaluate the last complete day.
    last = min(last, date.fromisoformat(daily_partitions.get_last_partition_key()))
    if last < first:
        raise NothingToEvaluate(f"every event is from {first}, a day that is not over yet")
    with DagsterInstance.get() as instance:
        tags = {
            ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
        }
        engagement = defs.resolve_job_def("engagement").execute_in_process(instance=instance, tags=tags)
        if not engagement.success:
            raise RuntimeError(f"the engagement run failed (run id {engagement.run_id})")
        run = defs.resolve_job_def("evaluation").execute_in_process(
            instance=instance,
            partition_key=last.isoformat(),
            run_config={"ops": {"gold__evaluation": {"config": evaluation_config}}},
        )
        if not run.success:
            raise RuntimeError(f"the evaluation run failed (run id {run.run_id})")
    (event,) = run.get_asset_materialization_events()
    metadata = event.materialization.metadata
    return {"report": metadata["report"].value, "sweep": metadata["sweep"].value, "run_id": run.run_id}
