"""Metadata every Delta-writing asset reports, built the same way everywhere."""

from __future__ import annotations

from typing import Any

from dagster import MetadataValue

from podrec.lake.delta import WriteResult
from podrec.privacy import masked_listeners


def delta_write_metadata(result: WriteResult, preview: Any | None = None) -> dict[str, Any]:
    """Row count, Delta version and path, and an optional pandas preview as markdown — with listener ids
    hashed and reasons left out, since metadata outlives a forget."""
    metadata: dict[str, Any] = {
        "dagster/row_count": result.rows_written,
        "delta_version": result.version,
        "path": MetadataValue.path(result.uri),
    }
    if preview is not None:
        metadata["preview"] = MetadataValue.md(masked_listeners(preview).to_markdown(index=False))
    return metadata
