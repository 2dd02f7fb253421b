"""Where a table lives: ``layer.name`` at ``<lake>/<layer>/<name>`` (docs/design.md), and how each
reader names that place (Spark's Hadoop ``s3a://`` is ``s3://`` to delta-rs and Arrow)."""

from __future__ import annotations

import os


def table_uri(lake_root: str, layer: str, name: str) -> str:
    return f"{lake_root.rstrip('/')}/{layer}/{name}"


def delta_rs_uri(uri: str) -> str:
    """The same place as delta-rs and Arrow name it: ``s3a://b/k`` → ``s3://b/k``."""
    return "s3://" + uri.removeprefix("s3a://") if uri.startswith("s3a://") else uri


def arrow_uri(uri: str) -> str:
    """``delta_rs_uri``, with a bare local path made a ``file://`` URI (Arrow's filesystems want one)."""
    uri = delta_rs_uri(uri)
    return uri if "://" in uri else "file://" + os.path.abspath(uri)
