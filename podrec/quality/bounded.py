"""A table's rows for its expectation suite, bounded in size and still exact where it matters.

Great Expectations validates a pandas frame; a day of a large table (3 M list rows at 300 k
listeners) does not belong in one. So when a table's rows exceed ``limit``, the frame handed to the
suite is:
- every *suspect* row, found by Spark from the suite's own expectations — rows breaking a
  row-level rule (nulls, ranges, sets, patterns, pairs), rows whose key appears more than once,
  rows pointing outside the catalog, and each day's newest row (freshness): so keys, references,
  nulls, ranges and the serving gates are judged on every row, exactly;
- plus a deterministic sample of whole entities (every row of a sampled listener or episode), so
  per-entity rules (K items per listener, one variant per canonical episode) and distribution-style
  rules see a representative, bounded share of the table.
Under ``limit`` the frame is simply the whole table. Either way the table is read once per run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.expectations import Expectation
    from pyspark.sql import Column, DataFrame

ROW_ID = "_podrec_row"


def _literal(value: Any) -> Column:
    from pyspark.sql import functions as F

    return F.lit(value)


def row_violation(expectation: Expectation, catalog_set: frozenset[str]) -> Column | None:
    """A Spark predicate true for the rows ``expectation`` rejects; None for table-level rules
    (uniqueness and extremes are found separately) and for sets as large as the catalog (joined)."""
    from pyspark.sql import functions as F

    kw = expectation.dict()
    kind = type(expectation).__name__
    column = F.col(kw["column"]) if kw.get("column") else None
    if kind == "ExpectColumnValuesToNotBeNull":
        return column.isNull()
    if kind == "ExpectColumnValuesToBeBetween":
        low, high = kw.get("min_value"), kw.get("max_value")
        out = F.lit(False)
        if low is not None:
            out = out | (column < _literal(low))
        if high is not None:
            out = out | (column > _literal(high))
        return column.isNotNull() & out
    if kind == "ExpectColumnValuesToBeInSet":
        values = list(kw["value_set"])
        if set(values) == set(catalog_set) and catalog_set:
            return None  # references: an anti-join with the catalog, not a literal list
        return column.isNotNull() & ~column.isin(values)
    if kind == "ExpectColumnValuesToMatchRegex":
        return column.isNotNull() & ~column.rlike(kw["regex"])
    if kind == "ExpectColumnPairValuesAToBeGreaterThanB":
        a, b = F.col(kw["column_A"]), F.col(kw["column_B"])
        return a.isNotNull() & b.isNotNull() & ((a < b) if kw.get("or_equal") else (a <= b))
    return None


def keys_of(expectation: Expectation) -> list[str] | None:
    kind = type(expectation).__name__
    kw = expectation.dict()
    if kind == "ExpectColumnValuesToBeUnique":
        return [kw["column"]]
    if kind == "ExpectCompoundColumnsToBeUnique":
        return list(kw["column_list"])
    return None


def bounded_rows(
    rows: DataFrame,
    expectations: list[Expectation],
    limit: int,
    sample_by: str | None,
    catalog: DataFrame | None,
    catalog_set: frozenset[str],
    day_column: str | None,
    rows_per_entity: int | None = None,
) -> tuple[pd.DataFrame, int]:
    """(frame for the suite, rows in the table): the whole table under ``limit`` rows, else the
    suspects plus a sample of whole entities of about ``limit`` rows. ``rows_per_entity``: every
    ``sample_by`` entity (and day) should have exactly that many rows — the others are suspects too."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    total = rows.count()
    if total <= limit:
        return rows.toPandas(), total
    marked = rows.withColumn(ROW_ID, F.monotonically_increasing_id()).persist()
    suspect = F.lit(False)
    columns = set(rows.columns)
    for expectation in expectations:
        violation = row_violation(expectation, catalog_set)
        needed = {c for c in (expectation.dict().get(k) for k in ("column", "column_A", "column_B")) if c}
        if violation is not None and needed <= columns:
            suspect = suspect | violation
    parts = [marked.where(suspect)]
    partition = [day_column] if day_column else []
    for expectation in expectations:
        keys = keys_of(expectation)
        if keys and set(keys) <= columns:
            count = F.count(F.lit(1)).over(Window.partitionBy(*keys))
            parts.append(marked.withColumn("_n", count).where("_n > 1").drop("_n"))
        kw = expectation.dict()
        if (
            type(expectation).__name__ == "ExpectColumnValuesToBeInSet" and catalog is not None
            and set(kw["value_set"]) == set(catalog_set) and kw["column"] in columns
        ):  # fmt: skip
            known = catalog.select(F.col("episode_id").alias(kw["column"]))
            parts.append(marked.join(known, kw["column"], "left_anti"))
    if rows_per_entity is not None and sample_by:
        size = F.count(F.lit(1)).over(Window.partitionBy(sample_by, *partition))
        parts.append(marked.withColumn("_n", size).where(F.col("_n") != rows_per_entity).drop("_n"))
    # Freshness reads each day's newest row: keep it, whatever the sample.
    for column in ("occurred_at",):
        if column in columns:
            newest = F.max(column).over(Window.partitionBy(*partition)) if partition else F.max(column).over(
                Window.partitionBy(F.lit(1))
            )  # fmt: skip
            parts.append(
                marked.withColumn("_newest", newest).where(F.col(column) == F.col("_newest")).drop("_newest")
            )
    share = limit / total
    entity = F.col(sample_by) if sample_by else F.col(ROW_ID).cast("string")
    sampled = marked.where((F.pmod(F.xxhash64(entity), F.lit(1_000_000)) / 1_000_000.0) < share)
    parts.append(sampled)
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    frame = union.dropDuplicates([ROW_ID]).drop(ROW_ID).toPandas()
    marked.unpersist()
    return frame, total
