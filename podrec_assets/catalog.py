"""What Dagster's catalog shows of each table beyond its asset: columns, column lineage, freshness.

Applied once, to the whole code location (``with_catalog``), so an asset module never repeats it:

- **Column schemas** from the Spark schemas podrec declares (``podrec.lake.schemas.TABLE_SCHEMAS``) on
  every table asset that has one, so the catalog lists a table's columns before it is first written.
- **Column lineage** of the gold tables: which upstream columns each column is
  computed from — written here by hand, since the columns flow through Spark plans and library code
  that Dagster cannot read; the tests hold every named column and asset to the real ones.
- **Freshness**: the serving version, the lists and the daily tables they read fail their freshness
  policy when not materialized within ``PODREC_CHECKS_STALE_AFTER_HOURS`` (26 by default: a day and
  the daily run's slack), so a day that did not run shows red in the UI. The weekly assets (tuning,
  evaluation) and the content track, which runs only when episodes land, have none.
"""

from __future__ import annotations

from datetime import timedelta

from dagster import (
    AssetKey,
    AssetSpec,
    Definitions,
    FreshnessPolicy,
    TableColumn,
    TableColumnConstraints,
    TableColumnDep,
    TableColumnLineage,
    TableSchema,
    apply_freshness_policy,
)
from pyspark.sql.types import ArrayType, DataType, StructType

from podrec.lake.schemas import TABLE_SCHEMAS
from podrec.settings import PodrecSettings

# The daily path from events to what listeners are served: each is written every day it runs.
# silver/episodes is not: the content track rebuilds it only when a snapshot brings new episodes.
DAILY_SERVING_PATH = (
    "bronze/episodes",
    "bronze/user_events",
    "silver/user_events",
    "silver/daily_engagement",
    "silver/flagged_listeners",
    "gold/als_factors",
    "gold/recommendations",
    "mongo/serving_version",
)

# column → the upstream (table, column)s it is computed from.
COLUMN_LINEAGE: dict[str, dict[str, list[tuple[str, str]]]] = {
    "gold/episode_embeddings": {
        "episode_id": [("silver/transcripts", "episode_id")],
        "text_sha256": [("silver/transcripts", "text")],
        "vector": [("silver/transcripts", "text")],
    },
    "gold/episode_similarity": {
        "episode_id": [("gold/episode_embeddings", "episode_id")],
        "neighbor_episode_id": [("gold/episode_embeddings", "episode_id"), ("silver/episodes", "episode_id")],
        "similarity": [("gold/episode_embeddings", "vector")],
    },
    "gold/als_factors": {
        "id": [("silver/daily_engagement", "user_id"), ("silver/daily_engagement", "episode_id")],
        "factors": [("silver/daily_engagement", "confidence"), ("silver/daily_engagement", "engagement")],
        "interactions": [("silver/daily_engagement", "episode_id")],
    },
    "gold/recommendations": {
        "user_id": [("silver/daily_engagement", "user_id"), ("gold/als_factors", "id")],
        "episode_id": [
            ("gold/als_factors", "id"),
            ("gold/episode_similarity", "neighbor_episode_id"),
            ("silver/episodes", "episode_id"),
        ],
        "canonical_episode_id": [("silver/episodes", "canonical_episode_id")],
        "als_score": [("gold/als_factors", "factors")],
        "content_score": [("gold/episode_similarity", "similarity")],
        "score": [
            ("gold/als_factors", "factors"),
            ("gold/episode_similarity", "similarity"),
            ("gold/tuning", "serving"),
        ],
        "reason": [("silver/episodes", "title"), ("silver/daily_engagement", "episode_id")],
        "locale": [("silver/daily_engagement", "locale")],
        "model_version": [("gold/als_factors", "model_version")],
    },
}


def column_schema(schema: StructType) -> TableSchema:
    """A Spark schema as Dagster's column schema (types as Spark writes them, NOT NULL as constraints)."""
    return TableSchema(
        columns=[
            TableColumn(
                name=f.name,
                type=_type_name(f.dataType),
                constraints=TableColumnConstraints(nullable=f.nullable),
            )
            for f in schema.fields
        ]
    )


def _type_name(data_type: DataType) -> str:
    if isinstance(data_type, ArrayType):
        return f"array<{_type_name(data_type.elementType)}>"
    return data_type.simpleString()


def column_lineage(table: str) -> TableColumnLineage:
    return TableColumnLineage(
        deps_by_column={
            column: [
                TableColumnDep(asset_key=AssetKey(source.split("/")), column_name=name)
                for source, name in deps
            ]
            for column, deps in COLUMN_LINEAGE[table].items()
        }
    )


def _describe(spec: AssetSpec, freshness: FreshnessPolicy) -> AssetSpec:
    table = spec.key.to_user_string()
    metadata = {}
    if table in TABLE_SCHEMAS:
        metadata["dagster/column_schema"] = column_schema(TABLE_SCHEMAS[table])
    if table in COLUMN_LINEAGE:
        metadata["dagster/column_lineage"] = column_lineage(table)
    if metadata:
        spec = spec.merge_attributes(metadata=metadata)
    return apply_freshness_policy(spec, freshness) if table in DAILY_SERVING_PATH else spec


def with_catalog(defs: Definitions, settings: PodrecSettings) -> Definitions:
    """``defs`` with column schemas and lineage on its table assets and freshness on the daily path."""
    freshness = FreshnessPolicy.time_window(fail_window=timedelta(hours=settings.checks.stale_after_hours))
    return defs.map_resolved_asset_specs(func=lambda spec: _describe(spec, freshness))
