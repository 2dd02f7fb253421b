"""Metadata every Delta-writing asset reports, built the same way everywhere."""

from __future__ import annotations

from typing import Any

from dagster import MetadataValue

from podrec.lake.delta import WriteResult
from podrec.privacy import masked_listeners
from podrec_assets.catalog import COLUMN_LINEAGE, column_lineage


def delta_write_metadata(result: WriteResult, preview: Any | None = None) -> dict[str, Any]:
    """Row count, Delta version and path, the table's column lineage where it is declared (Dagster reads
    it from the latest materialization), and an optional pandas preview as markdown — with
    listener ids hashed and reasons left out, since metadata outlives a forget."""
    metadata: dict[str, Any] = {
        "dagster/row_count": result.rows_written,
        "delta_version": result.version,
        "path": MetadataValue.path(result.uri),
    }
    table = "/".join(result.uri.rstrip("/").split("/")[-2:])  # <lake>/<layer>/<name>
    if table in COLUMN_LINEAGE:
        metadata["dagster/column_lineage"] = column_lineage(table)
    if preview is not None:
        metadata["preview"] = MetadataValue.md(masked_listeners(preview).to_markdown(index=False))
    return metadata
