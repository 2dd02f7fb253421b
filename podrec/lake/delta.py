"""The lake's layout and the two ways podrec touches a Delta table.

Table ``layer.name`` lives at ``<lake>/<layer>/<name>`` (DESIGN.md). Spark writes; DuckDB
reads in-process through delta-rs, so analytics never start a JVM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    from pyspark.sql import DataFrame, SparkSession


def table_uri(lake_root: str, layer: str, name: str) -> str:
    return f"{lake_root.rstrip('/')}/{layer}/{name}"


@dataclass(frozen=True)
class WriteResult:
    """What a write did, for asset metadata."""

    uri: str
    version: int
    rows_written: int


def replace_partition(
    df: DataFrame,
    uri: str,
    partition_column: str,
    values: list[str],
) -> WriteResult:
    """Write ``df`` as exactly the given partition values of a Delta table.

    Delta's ``replaceWhere`` swaps those partitions in one commit, so re-running a day
    replaces it (never duplicates) and a failed write leaves the previous version intact.
    """
    from delta.tables import DeltaTable

    spark = df.sparkSession
    quoted = ", ".join(f"'{v}'" for v in values)
    condition = f"{partition_column} IN ({quoted})"
    (
        df.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", condition)
        # New columns are added to the table (Delta schema evolution); none are dropped.
        .option("mergeSchema", "true")
        .partitionBy(partition_column)
        .save(uri)
    )
    history = DeltaTable.forPath(spark, uri).history(1).collect()[0]
    metrics = history["operationMetrics"] or {}
    return WriteResult(
        uri=uri, version=int(history["version"]), rows_written=int(metrics.get("numOutputRows", 0))
    )


def read_delta(spark: SparkSession, uri: str, version: int | None = None) -> DataFrame:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(uri)


def read_required(spark: SparkSession, uri: str, hint: str) -> DataFrame:
    """Read a Delta table that must exist, or fail saying what to run first."""
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, uri):
        raise FileNotFoundError(f"no Delta table at {uri}: {hint}")
    return read_delta(spark, uri)


def exists(spark: SparkSession, uri: str) -> bool:
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, uri)


def duckdb_view(
    con: duckdb.DuckDBPyConnection,
    view: str,
    uri: str,
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Expose the current version of a Delta table to DuckDB as ``view``.

    delta-rs resolves the transaction log to the live Parquet files; DuckDB scans them
    through Arrow without copying. No Spark, no DuckDB extension download.
    """
    from deltalake import DeltaTable

    dataset = DeltaTable(delta_rs_uri(uri), storage_options=storage_options).to_pyarrow_dataset()
    con.register(view, dataset)


def delta_rs_uri(uri: str) -> str:
    """The same table as delta-rs names it."""
    # Hadoop's s3a:// scheme is plain s3:// to delta-rs.
    return "s3://" + uri.removeprefix("s3a://") if uri.startswith("s3a://") else uri
