"""The lake's contract tables (docs/design.md, Tables), and what each holds now — from the Delta log alone.

``CONTRACT_TABLES`` is the list of every Delta table podrec writes, as ``layer/name``; the table lives at
``<lake>/<layer>/<name>`` and is the asset of the same key. ``describe`` reports each one's URI, Delta
version, row count and newest day partition through delta-rs: the versions and counts come from the
transaction log's add actions (row counts are their file statistics, or Parquet footers where a file
has none), so it costs a look at the log and never a scan — the same on a laptop as on an object store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

from podrec.lake.paths import delta_rs_uri, table_uri

CONTRACT_TABLES: tuple[str, ...] = (
    "bronze/episodes",
    "bronze/user_events",
    "bronze/user_events_rejected",
    "bronze/impressions",
    "bronze/impressions_rejected",
    "silver/episodes",
    "silver/transcripts",
    "silver/user_events",
    "silver/daily_engagement",
    "silver/impressions",
    "silver/flagged_listeners",
    "gold/episode_embeddings",
    "gold/episode_similarity",
    "gold/als_factors",
    "gold/recommendations",
    "gold/evaluation",
    "gold/tuning",
    "monitoring/ab_analysis",
    "monitoring/drift_scores",
    "monitoring/retention",
    "monitoring/forget_audit",
    "monitoring/suppressed_listeners",
    "monitoring/lake_maintenance",
)


@dataclass(frozen=True)
class TableState:
    """One table as its Delta log says now; ``version`` None when it has not been written yet."""

    name: str
    uri: str
    version: int | None
    rows: int | None
    newest_partition: str | None

    @property
    def missing(self) -> bool:
        return self.version is None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe(lake_root: str, names: tuple[str, ...] = CONTRACT_TABLES) -> list[TableState]:
    """Each table's state, in ``names``' order (contract order: bronze, silver, gold, monitoring)."""
    return [describe_table(lake_root, name) for name in names]


def describe_table(lake_root: str, name: str) -> TableState:
    import pyarrow as pa
    from deltalake import DeltaTable

    layer, table = name.split("/")
    uri = table_uri(lake_root, layer, table)
    if not DeltaTable.is_deltatable(delta_rs_uri(uri)):
        return TableState(name, uri, None, None, None)
    delta = DeltaTable(delta_rs_uri(uri))
    files = pa.table(delta.get_add_actions(flatten=True)).to_pydict()
    return TableState(
        name,
        uri,
        delta.version(),
        _rows(delta, files),
        _newest_partition(delta.metadata().partition_columns, files),
    )


def _rows(delta: Any, files: dict[str, list[Any]]) -> int:
    counts = files.get("num_records", [])
    if all(n is not None for n in counts):
        return sum(counts)
    # A file written without statistics: its Parquet footer still says how many rows it holds.
    return delta.to_pyarrow_dataset().count_rows()


def _newest_partition(partition_columns: list[str], files: dict[str, list[Any]]) -> str | None:
    """The largest value of the table's (day) partition column among its live files."""
    if not partition_columns:
        return None
    values = [v for v in files.get(f"partition.{partition_columns[0]}", []) if v is not None]
    return str(max(values)) if values else None


def partitions_written_at(lake_root: str, name: str) -> dict[date, datetime]:
    """When each day partition of ``name`` last received a file (its newest live file's write time),
    from the Delta log's add actions: what changed since a downstream step ran, without a scan. Empty for
    a table not written yet."""
    import pyarrow as pa
    from deltalake import DeltaTable

    layer, table = name.split("/")
    uri = delta_rs_uri(table_uri(lake_root, layer, table))
    if not DeltaTable.is_deltatable(uri):
        return {}
    delta = DeltaTable(uri)
    (column,) = delta.metadata().partition_columns
    files = pa.table(delta.get_add_actions(flatten=True)).to_pydict()
    written: dict[date, datetime] = {}
    for value, ms in zip(files[f"partition.{column}"], files["modification_time"], strict=True):
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
        at = datetime.fromtimestamp(ms / 1000, tz=UTC)
        written[day] = max(written.get(day, at), at)
    return written
