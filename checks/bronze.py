"""Checks on the bronze tables."""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import functions as F

from podrec.lake import read_delta
from podrec_assets.bronze import bronze_episodes
from podrec_assets.partitions import daily_partitions
from resources import LakeResource


@asset_check(
    asset=bronze_episodes,
    partitions_def=daily_partitions,
    blocking=True,
    description="episode_id is a key of each day's snapshot: a duplicate would double-count an episode.",
)
def bronze_episodes_unique_per_day(
    context: AssetCheckExecutionContext, spark: LazyPySparkResource, lake: LakeResource
) -> AssetCheckResult:
    days = list(context.partition_keys) if context.has_partition_key else []
    df = read_delta(spark.spark_session, lake.table("bronze", "episodes"))
    if days:
        df = df.where(F.col("ingest_date").isin(days))
    dupes = df.groupBy("ingest_date", "episode_id").count().where("count > 1")
    n = dupes.count()
    examples = dupes.orderBy(F.desc("count")).limit(5).toPandas().to_markdown(index=False) if n else "none"
    return AssetCheckResult(
        passed=n == 0,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "duplicated_keys": n,
            "expected": 0,
            "examples": MetadataValue.md(examples),
        },
    )
