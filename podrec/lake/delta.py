"""Every way podrec reads and writes a Delta table through Spark, in one place.

Writes are one Delta commit each, so a failed write leaves the previous version intact:
- ``replace_partitions``: exactly the given partition values (``replaceWhere``); re-running a day
  replaces it, never duplicates it.
- ``append``: new rows, partitioned like the table; new columns are added.
- ``append_once``: ``append`` as one writer's next transaction (Delta's ``txnAppId``/``txnVersion``),
  refused if another commit of that writer landed since the plan's snapshot (``writer_mark``):
  how two ingestions of one Kafka range never both write it (stream-written bronze).
- ``upsert``: rows matched on keys are replaced, the rest inserted (``MERGE``).
- ``overwrite``: the whole table (small, current-state tables such as the catalog).
- ``delete_where``: rows matching a condition.
- ``replace_partitions_arrow``: ``replace_partitions`` for a pandas frame, through delta-rs (no Spark),
  for the assets that compute in DuckDB.
- ``append_arrow``, ``insert_new_arrow``, ``delete_rows``: append, insert-unless-present and delete by a SQL
  predicate through delta-rs, for the command line's small writes (an import's rejected rows, forgetting
  a listener, retention), which need no JVM.
Reads: ``read`` (optionally a version), ``read_required`` (fails saying what to run first), ``exists``.

Every write runs whole inside its table's commit lock (``podrec.lake.commit_lock.committing``): on an
object store, one writer at a time commits to a table, whichever process or engine it is; on the local
filesystem the lock costs nothing. So what a write reads and checks before committing still holds when
it commits, and the version it reports is its own commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from podrec.lake.commit_lock import committing

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame, SparkSession


@dataclass(frozen=True)
class WriteResult:
    """What a write did, for asset metadata."""

    uri: str
    version: int
    rows_written: int


def _result(spark: SparkSession, uri: str) -> WriteResult:
    from delta.tables import DeltaTable

    history = DeltaTable.forPath(spark, uri).history(1).collect()[0]
    metrics = history["operationMetrics"] or {}
    rows = metrics.get("numOutputRows") or (
        int(metrics.get("numTargetRowsInserted", 0)) + int(metrics.get("numTargetRowsUpdated", 0))
    )
    return WriteResult(uri=uri, version=int(history["version"]), rows_written=int(rows or 0))


def replace_partitions(df: DataFrame, uri: str, partition_column: str, values: list[str]) -> WriteResult:
    """Write ``df`` as exactly the given values of ``partition_column`` (new columns are added)."""
    quoted = ", ".join(f"'{v}'" for v in values)
    with committing(uri):
        (
            df.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", f"{partition_column} IN ({quoted})")
            .option("mergeSchema", "true")
            .partitionBy(partition_column)
            .save(uri)
        )
        return _result(df.sparkSession, uri)


def append(df: DataFrame, uri: str, partition_column: str | None = None) -> WriteResult:
    """Add ``df``'s rows; an empty append still creates a table that does not exist yet."""
    # mergeSchema: a column the wire format gained (an optional field) is added, never refused.
    writer = df.write.format("delta").mode("append").option("mergeSchema", "true")
    if partition_column:
        writer = writer.partitionBy(partition_column)
    with committing(uri):
        writer.save(uri)
        return _result(df.sparkSession, uri)


@dataclass(frozen=True)
class WriterMark:
    """A table as one writer found it: its version (None: no table yet) and the number of that
    writer's last committed transaction (0: none)."""

    version: int | None
    txn: int


def writer_mark(uri: str, app_id: str) -> WriterMark:
    """Read ``app_id``'s mark on the table (through delta-rs: the log only, no Spark job)."""
    from deltalake import DeltaTable

    from podrec.lake.paths import delta_rs_uri

    target = delta_rs_uri(uri)
    if not DeltaTable.is_deltatable(target):
        return WriterMark(None, 0)
    table = DeltaTable(target)
    return WriterMark(table.version(), table.transaction_version(app_id) or 0)


def append_once(
    df: DataFrame, uri: str, partition_column: str, app_id: str, mark: WriterMark
) -> WriteResult | None:
    """Append ``df`` as ``app_id``'s next transaction after ``mark``, or not at all (None).

    Delta records the highest transaction number each writer id committed, skips a write whose
    number is not above it, and fails a commit when a concurrent one of the same writer id lands
    first. Numbered ``mark.txn + 1``, this append lands only if no commit of ``app_id`` came
    after ``mark`` was read, so whatever was planned from the table at ``mark.version`` still
    holds when it commits. None: another commit of ``app_id`` got there first; read again, plan
    again. Which case happened is read from the table's history, where the commit carries a tag.

    The fence is only as good as the commit is atomic: on an object store the table's commit lock,
    held from the write to the history read, makes it so for every podrec writer (podrec.lake.commit_lock).
    """
    from deltalake import DeltaTable

    from podrec.lake.paths import delta_rs_uri

    tag = f"{app_id} {uuid.uuid4().hex}"
    writer = (
        df.write.format("delta")
        .mode("append")
        .option("txnAppId", app_id)
        .option("txnVersion", mark.txn + 1)
        .option("userMetadata", tag)
        .partitionBy(partition_column)
    )
    lost_race = _concurrent_commit_errors()  # imported before the write: the import maps Delta's errors
    with committing(uri):
        try:
            writer.save(uri)
        except lost_race:
            return None
        table = DeltaTable(delta_rs_uri(uri))
        since = -1 if mark.version is None else mark.version
        for commit in table.history(table.version() - since):
            if commit.get("userMetadata") == tag:
                rows = (commit.get("operationMetrics") or {}).get("numOutputRows", 0)
                return WriteResult(uri=uri, version=int(commit["version"]), rows_written=int(rows))
        return None


def upsert(df: DataFrame, uri: str, keys: list[str]) -> WriteResult:
    """Replace the rows whose ``keys`` match, insert the others; creates the table on first use."""
    from delta.tables import DeltaTable

    spark = df.sparkSession
    with committing(uri):
        if not DeltaTable.isDeltaTable(spark, uri):
            df.write.format("delta").save(uri)
        else:
            on = " AND ".join(f"t.{k} = u.{k}" for k in keys)
            (
                DeltaTable.forPath(spark, uri)
                .alias("t")
                .merge(df.alias("u"), on)
                .whenMatchedUpdateAll()
                .whenNotMatchedInsertAll()
                .execute()
            )
        return _result(spark, uri)


def _concurrent_commit_errors() -> tuple[type[Exception], ...]:
    from delta.exceptions import (
        ConcurrentAppendException,
        ConcurrentTransactionException,
        ConcurrentWriteException,
        DeltaConcurrentModificationException,
        MetadataChangedException,
        ProtocolChangedException,
    )

    # Delta's Python classes do not share a base: a lost race on a new table is a protocol or
    # metadata change, on an existing one a transaction (same writer id) conflict.
    return (
        ConcurrentAppendException, ConcurrentTransactionException, ConcurrentWriteException,
        DeltaConcurrentModificationException, MetadataChangedException, ProtocolChangedException,
    )  # fmt: skip


def overwrite(df: DataFrame, uri: str) -> WriteResult:
    """The whole table replaced in one commit: readers see the old rows or the new, never a mix."""
    with committing(uri):
        df.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(uri)
        return _result(df.sparkSession, uri)


def delete_where(spark: SparkSession, uri: str, condition: Column) -> None:
    from delta.tables import DeltaTable

    with committing(uri):
        if DeltaTable.isDeltaTable(spark, uri):
            DeltaTable.forPath(spark, uri).delete(condition)


def replace_partitions_arrow(
    frame: pd.DataFrame,
    uri: str,
    partition_column: str,
    values: list[str],
    only: dict[str, str] | None = None,
) -> WriteResult:
    """Write ``frame`` as exactly the given values of ``partition_column`` (and, with ``only``, just
    the rows whose columns equal those values: one check's rows of a shared table), in one delta-rs
    commit."""
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    from podrec.lake.paths import delta_rs_uri

    quoted = ", ".join(f"'{v}'" for v in values)
    predicate = f"{partition_column} IN ({quoted})" + "".join(
        f" AND {column} = '{value}'" for column, value in (only or {}).items()
    )
    target = delta_rs_uri(uri)
    # The frame's index is never a column, whatever it is (a slice's index would otherwise be kept).
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with committing(uri):
        write_deltalake(target, table, mode="overwrite", partition_by=[partition_column], predicate=predicate)
        return WriteResult(uri=uri, version=DeltaTable(target).version(), rows_written=table.num_rows)


def in_chunks(df: DataFrame, key: str, rows_per_chunk: int) -> Iterator[pd.DataFrame]:
    """``df`` as pandas frames of at most about ``rows_per_chunk`` rows, every row of one ``key``
    value in the same chunk, sorted by ``key``: a table larger than a driver, streamed through it.
    Each chunk is one Spark job over ``df`` (persist it first)."""
    from pyspark.sql import functions as F

    chunks = max(1, -(-df.count() // rows_per_chunk))
    for chunk in range(chunks):
        part = df.where(F.pmod(F.xxhash64(key), F.lit(chunks)) == chunk).toPandas()
        yield part.sort_values(key, kind="stable").reset_index(drop=True)


def read(spark: SparkSession, uri: str, version: int | None = None) -> DataFrame:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(uri)


def read_required(spark: SparkSession, uri: str, hint: str) -> DataFrame:
    """Read a Delta table that must exist, or fail saying what to run first."""
    if not exists(spark, uri):
        raise FileNotFoundError(f"no Delta table at {uri}: {hint}")
    return read(spark, uri)


def exists(spark: SparkSession, uri: str) -> bool:
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, uri)


def _arrow_table(frame: pd.DataFrame) -> Any:
    import pyarrow as pa

    # The frame's index is never a column, whatever it is.
    return pa.Table.from_pandas(frame, preserve_index=False)


def _delta_rs(uri: str) -> Any | None:
    """The table as delta-rs opens it, or None where there is no Delta table."""
    from deltalake import DeltaTable

    from podrec.lake.paths import delta_rs_uri

    target = delta_rs_uri(uri)
    return DeltaTable(target) if DeltaTable.is_deltatable(target) else None


def append_arrow(frame: pd.DataFrame, uri: str, partition_column: str | None = None) -> WriteResult:
    """Add ``frame``'s rows in one delta-rs commit (creating the table if it does not exist)."""
    from deltalake import DeltaTable, write_deltalake

    from podrec.lake.paths import delta_rs_uri

    table = _arrow_table(frame)
    partition_by = [partition_column] if partition_column else None
    target = delta_rs_uri(uri)
    with committing(uri):
        write_deltalake(target, table, mode="append", partition_by=partition_by)
        return WriteResult(uri=uri, version=DeltaTable(target).version(), rows_written=table.num_rows)


def insert_new_arrow(frame: pd.DataFrame, uri: str, keys: list[str], partition_column: str) -> WriteResult:
    """Insert the rows of ``frame`` whose ``keys`` are not in the table yet, in one commit: writing the
    same rows twice adds them once."""
    with committing(uri):
        existing = _delta_rs(uri)
        if existing is None:
            return append_arrow(frame, uri, partition_column)
        on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        metrics = (
            existing.merge(_arrow_table(frame), on, source_alias="s", target_alias="t")
            .when_not_matched_insert_all()
            .execute()
        )
        return WriteResult(
            uri=uri, version=existing.version(), rows_written=int(metrics["num_target_rows_inserted"])
        )


def delete_rows(uri: str, predicate: str) -> int:
    """Delete the rows matching a SQL ``predicate`` in one commit; how many went (0 without a table).

    The rows stay in the table's older versions (time travel) until ``VACUUM`` removes those files."""
    with committing(uri):
        table = _delta_rs(uri)
        if table is None:
            return 0
        return int(table.delete(predicate)["num_deleted_rows"])


def columns(uri: str) -> list[str] | None:
    """The table's column names, or None where there is no Delta table."""
    table = _delta_rs(uri)
    return None if table is None else [f.name for f in table.schema().fields]


def sql_string(value: str) -> str:
    """``value`` as a SQL string literal for a predicate (quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"
