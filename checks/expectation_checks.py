"""The Great Expectations suites of ``podrec/quality/suites.py`` as Dagster asset checks, one per rule.

Each table gets one multi-asset check that reads its rows once (the run's day, or days, for a dated
table), runs every suite, and reports one result per rule (schema, not_null, ranges, unique_keys,
references, freshness and the serving gates) with what failed, how many rows, and examples.
"""

from collections.abc import Iterator
from dataclasses import replace
from datetime import date

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    PartitionsDefinition,
    multi_asset_check,
)
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from podrec.lake.delta import exists, read
from podrec.quality.expectations import Outcome, validate
from podrec.quality.suites import SUITES, Facts, TableSuite
from podrec.recsys.window import in_window
from podrec.settings import PodrecSettings
from resources import LakeResource


def _days(
    context: AssetCheckExecutionContext, session: SparkSession, uri: str, s: TableSuite
) -> list[str | None]:
    """The run's day(s); for a stream-written table, its newest day; None for an undated table."""
    if context.has_partition_key_range or context.has_partition_key:
        return list(context.partition_keys)
    if s.partition_column and not s.dagster_partitioned:
        newest = read(session, uri).agg(F.max(s.partition_column)).collect()[0][0]
        return [newest.isoformat()] if newest else [None]
    return [None]


def _read_rows(
    session: SparkSession, uri: str, s: TableSuite, day: str | None
) -> tuple[DataFrame, pd.DataFrame]:
    df = read(session, uri)
    if day is not None and s.partition_column:
        df = df.where(F.col(s.partition_column) == F.lit(date.fromisoformat(day)))
    derived = df
    for name, expr in s.derive.items():
        derived = derived.withColumn(name, F.expr(expr))
    return df, derived.drop(*s.drop).toPandas()


def _facts(session: SparkSession, lake: LakeResource, s: TableSuite, settings: PodrecSettings) -> Facts:
    """What the table is compared with that does not depend on the day: read once per check run."""
    catalog: frozenset[str] = frozenset()
    if "catalog" in s.needs and exists(session, lake.table("silver", "episodes")):
        rows = read(session, lake.table("silver", "episodes")).select("episode_id").collect()
        catalog = frozenset(r.episode_id for r in rows)
    bronze_latest = None
    if "bronze_latest" in s.needs:
        bronze_latest = (
            read(session, lake.table("bronze", "episodes")).agg(F.max("ingest_date")).collect()[0][0]
        )
    return Facts(
        catalog_ids=catalog, bronze_latest=bronze_latest, k=settings.hybrid.k,
        freshness_hours=settings.checks.freshness_hours,
    )  # fmt: skip


def _active_users(session: SparkSession, lake: LakeResource, day: date, window_days: int) -> frozenset[str]:
    """Listeners with engagement in the model window ending on ``day``: the ones who get a list."""
    engaged = read(session, lake.table("silver", "daily_engagement")).where(
        in_window("event_date", day, window_days)
    )
    return frozenset(r.user_id for r in engaged.select("user_id").distinct().collect())


def _result(
    key: AssetKey, name: str, blocking: bool, outcomes: dict[str | None, Outcome]
) -> AssetCheckResult:
    failed = {day: o for day, o in outcomes.items() if not o.passed}
    report = "\n\n".join(
        (f"**{day}**\n\n" if day else "") + o.markdown() for day, o in (failed or outcomes).items()
    )
    return AssetCheckResult(
        asset_key=key,
        check_name=name,
        passed=not failed,
        severity=AssetCheckSeverity.ERROR if blocking else AssetCheckSeverity.WARN,
        metadata={
            "rows_checked": sum(o.rows for o in outcomes.values()),
            "failing_rows": sum(o.failing_rows for o in failed.values()),
            "failed_expectations": sum(len(o.failures) for o in failed.values()),
            "days": ", ".join(d for d in outcomes if d) or "whole table",
            "result": MetadataValue.md(report),
        },
    )


def table_check(
    s: TableSuite, settings: PodrecSettings, daily: PartitionsDefinition
) -> AssetChecksDefinition:
    """One multi-asset check carrying a table's rules; blocking ones fail with severity ERROR."""
    key = AssetKey([s.layer, s.name])
    partitions = daily if s.partition_column and s.dagster_partitioned else None
    specs = [
        AssetCheckSpec(
            c.name, asset=key, description=c.description, blocking=c.blocking, partitions_def=partitions
        )
        for c in s.checks
    ]

    @multi_asset_check(
        name=f"{s.layer}_{s.name}_expectations",
        specs=specs,
        description=f"Great Expectations suites of {s.key} (podrec/quality/suites.py).",
    )
    def _check(
        context: AssetCheckExecutionContext, spark: LazyPySparkResource, lake: LakeResource
    ) -> Iterator[AssetCheckResult]:
        session = spark.spark_session
        uri = lake.table(s.layer, s.name)
        outcomes: dict[str, dict[str | None, Outcome]] = {c.name: {} for c in s.checks}
        shared = _facts(session, lake, s, settings)
        for day in _days(context, session, uri, s):
            table, rows = _read_rows(session, uri, s, day)
            the_day = date.fromisoformat(day) if day else None
            facts = replace(
                shared, day=the_day, types={f.name: f.dataType.simpleString() for f in table.schema.fields},
                active_users=_active_users(session, lake, the_day, settings.als.window_days)
                if "active_users" in s.needs and the_day else frozenset(),
            )  # fmt: skip
            built = s.build(rows, facts)
            if set(built) != set(outcomes):  # a declared check never built would pass unchecked
                raise ValueError(f"{s.key}: suite builds {sorted(built)}, declares {sorted(outcomes)}")
            for name, (frame, expectations) in built.items():
                outcomes[name][day] = validate(frame, expectations)
            context.log.info(f"{s.key} {day or ''}: {len(rows)} rows checked")
        for c in s.checks:
            yield _result(key, c.name, c.blocking, outcomes[c.name])

    return _check


def table_checks(settings: PodrecSettings, daily: PartitionsDefinition) -> list[AssetChecksDefinition]:
    """Every table's expectation suite as Dagster checks."""
    return [table_check(s, settings, daily) for s in SUITES]
