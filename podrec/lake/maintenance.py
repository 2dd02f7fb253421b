"""Table upkeep for a lake that runs for years: compaction of the newest partitions and VACUUM.

Every daily write adds files: appended tables (transcripts, embeddings) gain a few a day, and each
overwrite or replaced partition leaves the old files behind for time travel. Left alone, reads slow
with the file count and storage grows with the history, and rows deleted by retention or by a
listener's forget request stay in those old files. Once a week, per table:

- **compaction** (``OPTIMIZE``) of the partitions written since the last run only
  (``compact_days``), or the whole table when it is not partitioned (those are bounded by the
  catalog) — so its cost follows the week's data, not the history;
- **VACUUM** ``LITE``: files removed from the table more than ``retain_hours`` ago are deleted, found
  from the transaction log rather than by listing the storage (a listing would grow with history).

Both are single Delta commits: a run that fails, or that loses a race with a daily write (Delta's
optimistic concurrency), leaves the table as it was. Each holds the table's commit lock
(podrec.lake.commit_lock) like any other write, so on an object store no writer commits beside it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from podrec.lake.commit_lock import committing
from podrec.lake.paths import table_uri

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class Upkeep:
    """What one table's upkeep did."""

    table: str
    files_removed: int  # small files compaction replaced
    files_added: int  # the files it wrote instead
    files_vacuumed: int  # old files deleted from storage
    seconds: float


def compact(spark: SparkSession, uri: str, since: date | None) -> tuple[int, int]:
    """``OPTIMIZE`` the table (its partitions from ``since`` on, when it has a partition column):
    (files removed, files added)."""
    from delta.tables import DeltaTable

    with committing(uri):
        table = DeltaTable.forPath(spark, uri)
        partitioned = table.detail().select("partitionColumns").first()[0]
        builder = table.optimize()
        if partitioned and since is not None:
            builder = builder.where(f"`{partitioned[0]}` >= '{since.isoformat()}'")
        (metrics,) = builder.executeCompaction().select("metrics").first()
    return int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"])


def vacuum(spark: SparkSession, uri: str, retain_hours: int) -> int:
    """``VACUUM … LITE``: delete files the table stopped using more than ``retain_hours`` ago; how
    many were deleted (from the VACUUM END commit's metrics)."""
    from delta.tables import DeltaTable

    with committing(uri):
        spark.sql(f"VACUUM delta.`{uri}` RETAIN {retain_hours} HOURS LITE")
        history = DeltaTable.forPath(spark, uri).history(1).select("operation", "operationMetrics").first()
    if history is None or history["operation"] != "VACUUM END":
        return 0  # nothing was old enough: Delta commits no VACUUM END then
    return int((history["operationMetrics"] or {}).get("numDeletedFiles", 0))


def upkeep(
    spark: SparkSession,
    lake_root: str,
    tables: tuple[str, ...],
    day: date,
    compact_days: int,
    retain_hours: int,
) -> list[Upkeep]:
    """Compact and vacuum each of ``tables`` (``layer/name``) that exists, for the run of ``day``."""
    from delta.tables import DeltaTable

    since = day - timedelta(days=compact_days - 1)
    done = []
    for name in tables:
        uri = table_uri(lake_root, *name.split("/"))
        if not DeltaTable.isDeltaTable(spark, uri):
            continue
        started = time.perf_counter()
        removed, added = compact(spark, uri, since)
        vacuumed = vacuum(spark, uri, retain_hours)
        done.append(Upkeep(name, removed, added, vacuumed, round(time.perf_counter() - started, 2)))
    return done
