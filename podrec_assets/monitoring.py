"""Monitoring: the daily A/B analysis, computed in DuckDB over the Delta tables (no Spark needed)."""

from datetime import date

import duckdb
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset
from deltalake import DeltaTable, write_deltalake

from podrec.lake.delta import delta_rs_uri, duckdb_view, table_uri
from podrec.recsys.ab_analysis import analyse, listener_day
from podrec_assets.calendar import daily_partitions
from podrec_assets.silver import silver_daily_engagement, silver_episodes, silver_user_events
from resources import LakeResource, RecommenderResource


@asset(
    key=["monitoring", "ab_analysis"],
    group_name="monitoring",
    kinds={"duckdb", "delta"},
    owners=["team:podrec"],
    partitions_def=daily_partitions,
    deps=[silver_user_events, silver_daily_engagement, silver_episodes],
    description=(
        "The A/B experiment on a day: per bucket and per policy, engagement rate, completion, session "
        "minutes and catalog diversity with 95% intervals, and hybrid minus als_only with a Welch "
        "(bootstrap for diversity) interval. Listeners counted in their sticky bucket (podrec.recsys.ab)."
    ),
)
def monitoring_ab_analysis(
    context: AssetExecutionContext, lake: LakeResource, recommender: RecommenderResource
) -> MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    con = duckdb.connect()
    for view, (layer, name) in {
        "events": ("silver", "user_events"),
        "engagement": ("silver", "daily_engagement"),
        "episodes": ("silver", "episodes"),
    }.items():
        duckdb_view(con, view, lake.table(layer, name))
    listeners = listener_day(con, day)
    (catalog_size,) = con.execute("select count(distinct canonical_episode_id) from episodes").fetchone()
    ab = recommender.ab_policy()
    table = analyse(listeners, day, ab.assign, catalog_size)
    uri = delta_rs_uri(table_uri(lake.root, "monitoring", "ab_analysis"))
    # One day's partition replaced in one commit: a re-run never duplicates.
    write_deltalake(
        uri, table, mode="overwrite", partition_by=["day"], predicate=f"day = '{day.isoformat()}'"
    )
    differences = table[table["level"] == "difference"].drop(columns=["day", "level", "bucket"])
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(table),
            "delta_version": DeltaTable(uri).version(),
            "path": MetadataValue.path(uri),
            "listeners": len(listeners),
            "experiment_id": ab.experiment_id,
            "hybrid_minus_als_only": MetadataValue.md(differences.round(4).to_markdown(index=False)),
        }
    )
