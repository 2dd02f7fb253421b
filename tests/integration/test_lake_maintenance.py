"""The weekly table upkeep on real Delta tables: compaction of the newest partitions only, VACUUM that
really deletes what no kept version needs, and the Dagster asset that records both."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from dagster import materialize
from deltalake import DeltaTable
from pyspark.sql import functions as F

from podrec.lake.delta import append, overwrite, read, replace_partitions_arrow
from podrec.lake.maintenance import compact, upkeep, vacuum
from resources import build_resources
from tests.conftest import assets

DAY = date(2026, 11, 20)
OLD = date(2026, 11, 1)  # outside the compaction window of DAY


def small_appends(spark, uri: str, day: date, times: int) -> None:
    """``times`` one-file appends to ``day``'s partition: what a table gains from daily writes."""
    for i in range(times):
        rows = spark.range(i * 100, (i + 1) * 100).select(
            F.col("id").cast("string").alias("user_id"), F.lit(day).alias("event_date")
        )
        append(rows.coalesce(1), uri, "event_date")


def files_per_day(uri: str) -> dict[str, int]:
    """Live files per partition, from the Delta log."""
    days = pa.table(DeltaTable(uri).get_add_actions(flatten=True)).column("partition.event_date").to_pylist()
    return {str(day): days.count(day) for day in set(days)}


@pytest.fixture
def no_retention_floor(spark):
    """Delta refuses VACUUM under 168 hours; a test that must see files go lifts that guard for itself."""
    key = "spark.databricks.delta.retentionDurationCheck.enabled"
    spark.conf.set(key, "false")
    yield
    spark.conf.set(key, "true")


def test_compaction_rewrites_the_window_and_leaves_older_partitions_alone(spark, tmp_path: Path) -> None:
    uri = str(tmp_path / "silver" / "user_events")
    small_appends(spark, uri, OLD, 3)
    small_appends(spark, uri, DAY, 4)
    assert files_per_day(uri) == {str(OLD): 3, str(DAY): 4}

    assert compact(spark, uri, since=date(2026, 11, 13)) == (4, 1)
    assert files_per_day(uri) == {str(OLD): 3, str(DAY): 1}
    assert read(spark, uri).count() == 700  # same rows, fewer files
    assert compact(spark, uri, since=date(2026, 11, 13)) == (0, 0)  # nothing left to do: idempotent


def test_vacuum_deletes_only_files_no_kept_version_needs(spark, tmp_path: Path, no_retention_floor) -> None:
    uri = str(tmp_path / "silver" / "episodes")
    for version in range(3):  # a current-state table: overwritten daily, its old files left behind
        overwrite(spark.range(10).withColumn("version", F.lit(version)), uri)
    on_disk = lambda: len(list(Path(uri).glob("*.parquet")))  # noqa: E731
    before = on_disk()
    assert vacuum(spark, uri, retain_hours=168) == 0  # everything removed is younger than a week
    assert on_disk() == before

    deleted = vacuum(spark, uri, retain_hours=0)
    assert deleted > 0 and on_disk() == before - deleted
    assert read(spark, uri).select("version").distinct().collect()[0][0] == 2  # the table is intact
    with pytest.raises(Exception, match=r"(?i)file|path"):  # time travel past the retention is gone
        read(spark, uri, version=0).collect()


def test_the_weekly_asset_records_each_tables_upkeep(spark, settings, tmp_path: Path) -> None:
    own = settings.with_(lake={"uri": str(tmp_path / "lake")})
    events = f"{own.lake.root}/silver/user_events"
    small_appends(spark, events, DAY, 3)
    overwrite(spark.range(5).coalesce(1), f"{own.lake.root}/silver/episodes")
    scores = f"{own.lake.root}/monitoring/drift_scores"  # written by delta-rs, not Spark
    for check in ("engagement", "event_mix"):
        frame = pd.DataFrame({"day": [DAY.isoformat()], "check": [check], "share": [0.1]})
        replace_partitions_arrow(frame, scores, "day", [DAY.isoformat()], only={"check": check})

    (maintenance,) = assets(own, "monitoring/lake_maintenance")
    result = materialize([maintenance], partition_key=DAY.isoformat(), resources=build_resources(own))
    assert result.success
    report = DeltaTable(f"{own.lake.root}/monitoring/lake_maintenance").to_pandas().set_index("table")
    # the tables written so far
    assert sorted(report.index) == ["monitoring/drift_scores", "silver/episodes", "silver/user_events"]
    assert report.loc["silver/user_events", ["files_removed", "files_added"]].tolist() == [3, 1]
    assert report.loc["monitoring/drift_scores", ["files_removed", "files_added"]].tolist() == [2, 1]
    assert sorted(DeltaTable(scores).to_pandas()["check"]) == ["engagement", "event_mix"]
    assert report.loc["silver/episodes", "files_removed"] == 0  # one file already
    assert (report["files_vacuumed"] == 0).all()  # nothing is a week old yet
    assert files_per_day(events) == {str(DAY): 1}
    (materialization,) = result.asset_materializations_for_node("monitoring__lake_maintenance")
    assert materialization.metadata["files_compacted"].value == 5


def test_upkeep_skips_tables_not_written_yet(spark, tmp_path: Path) -> None:
    assert upkeep(spark, str(tmp_path / "lake"), ("gold/recommendations",), DAY, 8, 168) == []
