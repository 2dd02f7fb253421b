"""The Great Expectations suites of ``podrec/quality/suites.py`` as Dagster asset checks, one per rule.

Each table gets one multi-asset check. A run reads its rows once — the run's day, or every day of
a range run together — and validates each rule once over them, reporting one result per rule
(schema, not_null, ranges, unique_keys, references, freshness and the serving gates) with what
failed, how many rows, and examples. Large tables are bounded (podrec/quality/bounded.py): every
rule-breaking row is found by Spark and judged, plus a sample of whole listeners or episodes, so
keys, references, nulls, ranges and the gates stay exact at any size.
"""

from collections.abc import Iterator
from dataclasses import replace
from datetime import date

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
from podrec.quality.bounded import bounded_rows
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


def _rows(
    session: SparkSession, uri: str, s: TableSuite, days: list[str | None]
) -> tuple[DataFrame, DataFrame]:
    """The table's rows for the run's days (all of them for an undated table), as stored and as
    checked (derived columns added, blobs dropped)."""
    table = read(session, uri)
    if s.partition_column and days != [None]:
        table = table.where(F.col(s.partition_column).isin([date.fromisoformat(d) for d in days if d]))
    rows = table
    for name, expr in s.derive.items():
        rows = rows.withColumn(name, F.expr(expr))
    return table, rows.drop(*s.drop)


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


def _active_frame(
    session: SparkSession, lake: LakeResource, day: date, settings: PodrecSettings
) -> DataFrame:
    """Listeners with engagement in the model window ending on ``day``: the ones who get a list."""
    engaged = read(session, lake.table("silver", "daily_engagement"))
    return engaged.where(in_window("event_date", day, settings.als.window_days)).select("user_id").distinct()


def _active_users(
    session: SparkSession, lake: LakeResource, day: date, settings: PodrecSettings
) -> frozenset[str]:
    """Their ids on the driver: one string per active listener (10⁶ ≈ 60 MB)."""
    return frozenset(r.user_id for r in _active_frame(session, lake, day, settings).collect())


def _catalog(session: SparkSession, lake: LakeResource) -> DataFrame | None:
    uri = lake.table("silver", "episodes")
    return read(session, uri).select("episode_id") if exists(session, uri) else None


def _result(
    key: AssetKey, name: str, blocking: bool, outcome: Outcome, rows_checked: int, days: list[str | None]
) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=key,
        check_name=name,
        passed=outcome.passed,
        severity=AssetCheckSeverity.ERROR if blocking else AssetCheckSeverity.WARN,
        metadata={
            "rows_checked": rows_checked,
            "failing_rows": outcome.failing_rows,
            "failed_expectations": len(outcome.failures),
            "days": ", ".join(d for d in days if d) or "whole table",
            "result": MetadataValue.md(outcome.markdown()),
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
        days = _days(context, session, uri, s)
        table, rows = _rows(session, uri, s, days)
        the_days = tuple(date.fromisoformat(d) for d in days if d)
        facts = replace(
            _facts(session, lake, s, settings),
            day=the_days[0] if len(the_days) == 1 else None,
            days=the_days,
            day_column=s.partition_column,
            types={f.name: f.dataType.simpleString() for f in table.schema.fields},
        )
        active: frozenset[str] = frozenset()
        if "active_users" in s.needs and len(the_days) == 1:
            active = _active_users(session, lake, the_days[0], settings)
            facts = replace(facts, active_users=active)
        # The suite's rules, built on a few real rows, tell Spark which rows are suspect.
        probe = s.build(rows.limit(1000).toPandas(), facts)
        frame, total = bounded_rows(
            rows, [e for _, expectations in probe.values() for e in expectations], settings.checks.max_rows,
            s.sample_by, _catalog(session, lake) if "catalog" in s.needs else None, facts.catalog_ids,
            s.partition_column, rows_per_entity=settings.hybrid.k if active else None,
        )  # fmt: skip
        if active and len(frame) < total:
            # Judge the gate on the sampled and suspect listeners, and on every active one without a list.
            listed = rows.select("user_id").distinct()
            absent = {r.user_id for r in _active_frame(session, lake, the_days[0], settings).join(
                listed, "user_id", "left_anti").collect()}  # fmt: skip
            facts = replace(facts, active_users=(active & set(frame["user_id"])) | absent)
        built = s.build(frame, facts)
        if set(built) != {c.name for c in s.checks}:  # a declared check never built would pass unchecked
            raise ValueError(
                f"{s.key}: suite builds {sorted(built)}, declares {sorted(c.name for c in s.checks)}"
            )
        context.log.info(f"{s.key} {', '.join(d for d in days if d)}: {total} rows, {len(frame)} validated")
        for c in s.checks:
            checked, expectations = built[c.name]
            # A rule over the table's rows counts them all; a derived frame (lists, days) counts its own.
            count = (
                total
                if len(checked) == len(frame) and set(frame.columns) <= set(checked.columns)
                else len(checked)
            )
            yield _result(key, c.name, c.blocking, validate(checked, expectations), count, days)

    return _check


def table_checks(settings: PodrecSettings, daily: PartitionsDefinition) -> list[AssetChecksDefinition]:
    """Every table's expectation suite as Dagster checks."""
    return [table_check(s, settings, daily) for s in SUITES]
