"""Metadata every Delta-writing asset reports, built the same way everywhere."""

from __future__ import annotations

from typing import Any

from dagster import MetadataValue

from podrec.lake.delta import WriteResult


def delta_write_metadata(result: WriteResult, preview: Any | None = None) -> dict[str, Any]:
    """Row count, Delta version and path, and an optional pandas preview as markdown."""
    metadata: dict[str, Any] = {
        "dagster/row_count": result.rows_written,
        "delta_version": result.version,
        "path": MetadataValue.path(result.uri),
    }
    if preview is not None:
        metadata["preview"] = MetadataValue.md(preview.to_markdown(index=False))
    return metadata
