"""Spark with delta-spark writes; Delta time travel; DuckDB reads what Spark wrote."""

from datetime import date

import pandas as pd
import pytest
from pyspark.sql import Row

from podrec.lake.delta import append, overwrite, replace_partitions, replace_partitions_arrow, upsert
from podrec.lake.delta import read as read_delta
from podrec.lake.duck import open_lake
from podrec.lake.paths import table_uri

pytestmark = pytest.mark.integration


def _day(spark, day: str, n: int, tag: str):
    return spark.createDataFrame(
        [Row(k=f"{day}-{i}", v=i, tag=tag, day=date.fromisoformat(day)) for i in range(n)]
    )


def test_delta_write_read_time_travel_and_replace(spark, settings) -> None:
    uri = table_uri(settings.lake.root, "test", "replace")
    first = replace_partitions(_day(spark, "2026-11-01", 3, "a"), uri, "day", ["2026-11-01"])
    replace_partitions(_day(spark, "2026-11-02", 4, "a"), uri, "day", ["2026-11-02"])
    # Re-running a day replaces it: same keys, new values, other days untouched.
    rerun = replace_partitions(_day(spark, "2026-11-01", 3, "b"), uri, "day", ["2026-11-01"])
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
    replace_partitions(_day(spark, "2026-11-01", 2, "a"), uri, "day", ["2026-11-01"])
    with pytest.raises(Exception, match=r"(?i)replaceWhere|does not conform|DELTA_REPLACE_WHERE"):
        replace_partitions(_day(spark, "2026-11-02", 2, "x"), uri, "day", ["2026-11-01"])
    assert read_delta(spark, uri).count() == 2  # the failed write left the table as it was


def test_duckdb_reads_the_table_spark_wrote(spark, settings) -> None:
    uri = table_uri(settings.lake.root, "test", "duck")
    replace_partitions(_day(spark, "2026-11-01", 5, "a"), uri, "day", ["2026-11-01"])
    replace_partitions(_day(spark, "2026-11-01", 6, "b"), uri, "day", ["2026-11-01"])
    con = open_lake(settings.lake.root, {"t": ("test", "duck")}).con
    rows = con.execute("SELECT tag, count(*), sum(v), min(day) FROM t GROUP BY tag").fetchall()
    # Only the live version: the replaced files are not read.
    assert rows == [("b", 6, 15, date(2026, 11, 1))]


def test_every_write_mode_is_one_commit_with_its_row_count(spark, settings) -> None:
    """append adds, upsert replaces matching keys and inserts the rest, overwrite swaps the table,
    and delta-rs's partition replace (for DuckDB-computed tables) reads back through Spark."""
    uri = table_uri(settings.lake.root, "test", "modes")
    first = append(_day(spark, "2026-11-01", 3, "a"), uri, "day")
    assert (first.rows_written, read_delta(spark, uri).count()) == (3, 3)
    changed = spark.createDataFrame([Row(k="2026-11-01-0", v=10, tag="u", day=date(2026, 11, 1)),
                                     Row(k="new", v=11, tag="u", day=date(2026, 11, 1))])  # fmt: skip
    merged = upsert(changed, uri, ["k"])
    assert merged.version == first.version + 1 and merged.rows_written == 2
    rows = {r.k: r.tag for r in read_delta(spark, uri).collect()}
    assert rows == {"2026-11-01-0": "u", "2026-11-01-1": "a", "2026-11-01-2": "a", "new": "u"}
    swapped = overwrite(_day(spark, "2026-11-05", 1, "o"), uri)
    assert swapped.rows_written == 1 and {r.tag for r in read_delta(spark, uri).collect()} == {"o"}

    arrow_uri = table_uri(settings.lake.root, "test", "arrow")
    frame = pd.DataFrame({"day": ["2026-11-01", "2026-11-02"], "v": [1, 2]})
    replace_partitions_arrow(frame, arrow_uri, "day", ["2026-11-01", "2026-11-02"])
    again = replace_partitions_arrow(frame.iloc[[0]].assign(v=5), arrow_uri, "day", ["2026-11-01"])
    assert again.rows_written == 1
    assert sorted((r.day, r.v) for r in read_delta(spark, arrow_uri).collect()) == [
        ("2026-11-01", 5),
        ("2026-11-02", 2),
    ]
