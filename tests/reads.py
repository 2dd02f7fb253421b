"""Which lake tables each asset really reads, recorded while real materializations run.

``ReadLog.recording()`` wraps the calls every read of the lake goes through — Spark's reader and its
Delta existence check, delta-rs's table and its existence check (DuckDB and Arrow readers use it) —
and charges each table to the asset whose step is running (Dagster's current execution context).
An asset's own table, the tables its step writes beside it, and its writes' bookkeeping are not
inputs; neither is the forgotten-listener list, which the privacy guard (``podrec.privacy.Suppression``)
consults in every writer by rule, nor what lake maintenance opens to compact and vacuum.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dagster import AssetKey, DagsterInvariantViolationError, Definitions, OpExecutionContext

TABLE = re.compile(r"/(bronze|silver|gold|monitoring)/([a-z_]+)(?:/|$)")
# Read by every writer, by rule, not as an input of what it computes.
BY_RULE = {"monitoring/suppressed_listeners"}
# Assets that look after every table (compaction, VACUUM) rather than compute from some: what they open
# is their work, not their input, and declaring it would put them downstream of the whole lake.
HOUSEKEEPING = {"monitoring/lake_maintenance"}


def table_of(uri: Any) -> str | None:
    found = TABLE.search(str(uri))
    return f"{found.group(1)}/{found.group(2)}" if found else None


class ReadLog:
    def __init__(self) -> None:
        self.reads: dict[str, set[str]] = defaultdict(set)
        # The tables written by the same step (a multi-asset's outputs read each other's bookkeeping).
        self.step_outputs: dict[str, set[str]] = defaultdict(set)

    def _charge(self, uri: Any) -> None:
        table = table_of(uri)
        try:
            context = OpExecutionContext.get()
        except DagsterInvariantViolationError:  # outside a step (a test reading the lake itself)
            return
        if table is None or not context.has_assets_def:
            return
        outputs = {key.to_user_string() for key in context.selected_asset_keys}
        for key in outputs:
            self.reads[key].add(table)
            self.step_outputs[key] |= outputs

    @contextmanager
    def recording(self) -> Iterator[ReadLog]:
        from delta.tables import DeltaTable as SparkDeltaTable
        from deltalake import DeltaTable
        from pyspark.sql.readwriter import DataFrameReader

        def charged(call: Callable, uri_at: int) -> Callable:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                uri = args[uri_at] if len(args) > uri_at else kwargs.get("path") or kwargs.get("table_uri")
                self._charge(uri)
                return call(*args, **kwargs)

            return wrapper

        # (owner, attribute, where the URI is among the call's arguments, as the attribute is reached)
        targets = [
            (DataFrameReader, "load", 1),  # self, path
            (SparkDeltaTable, "isDeltaTable", 1),  # a classmethod: sparkSession, identifier
            (DeltaTable, "__init__", 1),  # self, table_uri
            (DeltaTable, "is_deltatable", 0),  # a staticmethod: table_uri
        ]
        saved = [(owner, name, owner.__dict__[name]) for owner, name, _ in targets]
        for owner, name, uri_at in targets:
            wrapped = charged(getattr(owner, name), uri_at)
            # Methods reached on an instance get ``self`` from the wrapper's own binding; class- and
            # static methods are reached already bound, so the wrapper must not be bound again.
            setattr(owner, name, wrapped if name in ("load", "__init__") else staticmethod(wrapped))
        try:
            yield self
        finally:
            for owner, name, original in saved:
                setattr(owner, name, original)

    def inputs(self, table: str) -> set[str]:
        if table in HOUSEKEEPING:
            return set()
        return self.reads[table] - {table} - self.step_outputs[table] - BY_RULE


def declared_inputs(defs: Definitions, table: str, lake_tables: set[str]) -> set[str]:
    """The lake tables ``table``'s asset declares as dependencies (Kafka topics and the like are not)."""
    graph = defs.get_repository_def().asset_graph
    parents = graph.get(AssetKey(table.split("/"))).parent_keys
    return {key.to_user_string() for key in parents} & lake_tables
