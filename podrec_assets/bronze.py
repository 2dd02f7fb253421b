"""Bronze: data as it arrived, one Delta table per source, partitioned by arrival day."""

from datetime import date

from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult, RetryPolicy, asset
from dagster_pyspark import LazyPySparkResource

from podrec.catalog import EPISODE_COLUMNS, sample_snapshot
from podrec.lake import replace_partition
from podrec.spark_schemas import BRONZE_EPISODES
from podrec_assets.metadata import delta_write_metadata
from podrec_assets.partitions import daily_partitions
from resources import LakeResource


@asset(
    key=["bronze", "episodes"],
    group_name="bronze",
    kinds={"spark", "delta"},
    owners=["team:podrec"],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    retry_policy=RetryPolicy(max_retries=2, delay=5),
    description=(
        "One snapshot per day of the episodes of trending podcasts, as PodcastIndex (or the "
        "bundled sample catalog) listed them: one row per episode and ingest_date, languages "
        "normalised (pt-BR → pt), nothing merged or cleaned yet."
    ),
)
def bronze_episodes(
    context: AssetExecutionContext, spark: LazyPySparkResource, lake: LakeResource
) -> MaterializeResult:
    days = [date.fromisoformat(key) for key in context.partition_keys]
    rows, skipped = [], {}
    for day in days:
        day_rows, report = sample_snapshot(day)
        rows.extend(day_rows)
        for reason, count in report.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + count
    df = spark.spark_session.createDataFrame(rows, schema=BRONZE_EPISODES)
    result = replace_partition(
        df, lake.table("bronze", "episodes"), "ingest_date", [d.isoformat() for d in days]
    )
    context.log.info(f"bronze.episodes: {result.rows_written} rows for {len(days)} day(s)")
    preview = df.select("episode_id", "feed_title", "language", "title").limit(5).toPandas()
    return MaterializeResult(
        metadata={
            **delta_write_metadata(result, preview),
            "days": len(days),
            "source": "sample",
            "skipped": skipped or "none",
            "columns": ", ".join(EPISODE_COLUMNS),
        }
    )
