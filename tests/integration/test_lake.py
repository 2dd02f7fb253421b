"""Spark with delta-spark writes; Delta time travel; DuckDB reads what Spark wrote."""

from datetime import date

import duckdb
import pytest
from pyspark.sql import Row

from podrec.lake.delta import duckdb_view, read_delta, replace_partition, table_uri

pytestmark = pytest.mark.integration


def _day(spark, day: str, n: int, tag: str):
    return spark.createDataFrame(
        [Row(k=f"{day}-{i}", v=i, tag=tag, day=date.fromisoformat(day)) for i in range(n)]
    )


def test_delta_write_read_time_travel_and_replace(spark, settings) -> None:
    uri = table_uri(settings.lake.root, "test", "replace")
    first = replace_partition(_day(spark, "2026-11-01", 3, "a"), uri, "day", ["2026-11-01"])
    replace_partition(_day(spark, "2026-11-02", 4, "a"), uri, "day", ["2026-11-02"])
    # Re-running a day replaces it: same keys, new values, other days untouched.
    rerun = replace_partition(_day(spark, "2026-11-01", 3, "b"), uri, "day", ["2026-11-01"])
    assert rerun.rows_written == 3
    assert rerun.version == first.version + 2

    now = read_delta(spark, uri)
    assert now.count() == 7
    assert {r.tag for r in now.where("day = '2026-11-01'").collect()} == {"b"}
    assert {r.tag for r in now.where("day = '2026-11-02'").collect()} == {"a"}

    then = read_delta(spark, uri, version=first.version)
    assert then.count() == 3
    assert {r.tag for r in then.collect()} == {"a"}


def test_replace_rejects_rows_outside_the_partitions(spark, settings) -> None:
    uri = table_uri(settings.lake.root, "test", "guard")
    replace_partition(_day(spark, "2026-11-01", 2, "a"), uri, "day", ["2026-11-01"])
    with pytest.raises(Exception, match=r"(?i)replaceWhere|does not conform|DELTA_REPLACE_WHERE"):
        replace_partition(_day(spark, "2026-11-02", 2, "x"), uri, "day", ["2026-11-01"])
    assert read_delta(spark, uri).count() == 2  # the failed write left the table as it was


def test_duckdb_reads_the_table_spark_wrote(spark, settings) -> None:
    uri = table_uri(settings.lake.root, "test", "duck")
    replace_partition(_day(spark, "2026-11-01", 5, "a"), uri, "day", ["2026-11-01"])
    replace_partition(_day(spark, "2026-11-01", 6, "b"), uri, "day", ["2026-11-01"])
    con = duckdb.connect()
    duckdb_view(con, "t", uri)
    rows = con.execute("SELECT tag, count(*), sum(v), min(day) FROM t GROUP BY tag").fetchall()
    # Only the live version: the replaced files are not read.
    assert rows == [("b", 6, 15, date(2026, 11, 1))]
