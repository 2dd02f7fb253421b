"""DuckDB over the lake, in-process: delta-rs resolves each table's live Parquet files and DuckDB
scans them through Arrow without copying — no Spark, no JVM, no DuckDB extension download."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from podrec.lake.paths import delta_rs_uri, table_uri


@dataclass
class LakeViews:
    """A DuckDB connection with one view per table; tables that do not exist yet are listed."""

    con: duckdb.DuckDBPyConnection
    root: str
    missing: list[str] = field(default_factory=list)

    def has(self, *views: str) -> bool:
        return not set(views) & set(self.missing)

    def sql(self, query: str, params: list[Any] | None = None) -> duckdb.DuckDBPyConnection:
        return self.con.execute(query, params or [])

    def df(self, query: str, params: list[Any] | None = None) -> pd.DataFrame:
        return self.sql(query, params).df()


def open_lake(lake_root: str, tables: Mapping[str, tuple[str, str]], missing_ok: bool = False) -> LakeViews:
    """Register each ``view=(layer, name)`` table as a DuckDB view of its current version.

    A table that does not exist is an error unless ``missing_ok``; then it is listed in ``missing``.
    """
    from deltalake import DeltaTable

    views = LakeViews(duckdb.connect(), lake_root)
    for view, (layer, name) in tables.items():
        uri = delta_rs_uri(table_uri(lake_root, layer, name))
        if missing_ok and not DeltaTable.is_deltatable(uri):
            views.missing.append(view)
            continue
        views.con.register(view, DeltaTable(uri).to_pyarrow_dataset())
    return views
