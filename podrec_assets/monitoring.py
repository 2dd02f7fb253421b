"""Monitoring: the daily A/B analysis, computed in DuckDB over the Delta tables (no Spark needed), the
event retention, which deletes events older than ``settings.retention.event_days``, and the weekly
table upkeep (compaction and VACUUM), which keeps a lake that runs for years as fast and as small as
its recent data."""

from dataclasses import asdict
from datetime import date

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetsDefinition,
    AssetSelection,
    AssetSpec,
    Backoff,
    Definitions,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
    asset_check,
    define_asset_job,
)
from dagster_pyspark import LazyPySparkResource

from podrec.lake.delta import replace_partitions_arrow
from podrec.lake.duck import open_lake
from podrec.lake.maintenance import Upkeep, upkeep
from podrec.lake.tables import CONTRACT_TABLES
from podrec.privacy import EVENT_DATE, LISTENER_TABLES, delete_listener_rows_before, retention_cutoff
from podrec.recsys.ab import assign
from podrec.recsys.ab_analysis import COLUMNS, analyse, listener_day
from podrec.recsys.ab_readout import experiment_days, readout, readout_rows
from podrec.settings import PodrecSettings
from podrec_assets.calendar import Calendar
from podrec_assets.metadata import delta_write_metadata
from resources import LakeResource

INPUTS = {
    "events": ("silver", "user_events"),
    "engagement": ("silver", "daily_engagement"),
    "episodes": ("silver", "episodes"),
    "impressions": ("silver", "impressions"),
}
AB_ANALYSIS = ["monitoring", "ab_analysis"]


def ab_analysis(settings: PodrecSettings, calendar: Calendar) -> AssetsDefinition:
    @asset(
        key=["monitoring", "ab_analysis"],
        group_name="monitoring",
        kinds={"duckdb", "delta"},
        owners=["team:podrec"],
        partitions_def=calendar.daily,
        deps=[list(table) for table in INPUTS.values()],
        description=(
            "The A/B experiment on a day: per bucket and per policy, engagement rate, completion, session "
            "minutes and catalog diversity with 95% intervals, and hybrid minus als_only with a Welch "
            "(bootstrap for diversity) interval. Listeners counted in their sticky bucket "
            "(podrec.recsys.ab). "
            "Then the readout (podrec/recsys/ab_readout.py) for the day and for the experiment so far: plays "
            "per impression (position-weighted too), plays of new episodes, hours from a new episode's "
            "appearance to its first impression and play, engagement and completion (CUPED), with 95% "
            "intervals, and the sample-ratio test."
        ),
    )
    def monitoring_ab_analysis(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
        day = date.fromisoformat(context.partition_key)
        # silver/impressions exists once anything was served; a lake fed only by logs has none.
        views = open_lake(lake.root, INPUTS, missing_ok=True)
        if absent := ["/".join(INPUTS[v]) for v in views.missing if v != "impressions"]:
            raise FileNotFoundError(f"the A/B analysis needs {absent}: materialize them first")
        listeners = listener_day(views.con, day)
        (catalog_size,) = views.sql("select count(distinct canonical_episode_id) from episodes").fetchone()
        arm = lambda user_id: assign(user_id, settings.ab)  # noqa: E731
        table = analyse(listeners, day, arm, catalog_size)
        served = "impressions" not in views.missing
        period = experiment_days(views.con, settings.ab.experiment_id) if served else None
        if period is not None and period[0] <= day:
            ab = settings.ab
            knobs = (ab.hybrid_buckets / 100, ab.new_episode_days, ab.cuped_days)
            table = pd.concat(
                [
                    table,
                    readout_rows(readout(views.con, day, day, arm, *knobs), day, "day", COLUMNS),
                    readout_rows(readout(views.con, period[0], day, arm, *knobs), day, "experiment", COLUMNS),
                ],
                ignore_index=True,
            )
            table["bucket"] = table["bucket"].astype("Int32")
        # One day's partition replaced in one commit: a re-run never duplicates.
        result = replace_partitions_arrow(
            table, lake.table("monitoring", "ab_analysis"), "day", [day.isoformat()]
        )
        differences = table[table["level"] == "difference"].drop(columns=["day", "level", "bucket"])
        return MaterializeResult(
            metadata={
                **delta_write_metadata(result),
                "listeners": len(listeners),
                "experiment_id": settings.ab.experiment_id,
                "hybrid_minus_als_only": MetadataValue.md(differences.round(4).to_markdown(index=False)),
            }
        )

    return monitoring_ab_analysis


RETENTION = ["monitoring", "retention"]


def retention(settings: PodrecSettings, calendar: Calendar) -> AssetsDefinition:
    @asset(
        key=RETENTION,
        group_name="monitoring",
        kinds={"python", "delta"},
        owners=["team:podrec"],
        partitions_def=calendar.daily,
        deps=[list(table) for table in LISTENER_TABLES],
        description=(
            "What the retention deleted on a day: per table that holds listeners, the rows dated before "
            f"the day's cutoff — events and impressions after {settings.retention.event_days} days "
            f"(PODREC_RETENTION_EVENT_DAYS), lists, factors and saved models after "
            f"{settings.retention.derived_days} (PODREC_RETENTION_DERIVED_DAYS), the day included. "
            "Deleted rows stay in the tables' older Delta versions until the weekly "
            "monitoring/lake_maintenance vacuums them."
        ),
    )
    def monitoring_retention(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
        day = date.fromisoformat(context.partition_key)
        events = retention_cutoff(day, settings.retention.event_days)
        derived = retention_cutoff(day, settings.retention.derived_days)
        removed = delete_listener_rows_before(lake.root, events, derived)
        context.log.info(f"retention {day}: kept events from {events}, lists and models from {derived}")
        cutoffs = [
            events if LISTENER_TABLES.get(tuple(t.split("."))) == EVENT_DATE else derived for t in removed
        ]
        table = pd.DataFrame(
            {"day": [day] * len(removed), "table": list(removed), "cutoff": cutoffs,
             "rows_removed": pd.Series(list(removed.values()), dtype="int64")}
        )  # fmt: skip
        result = replace_partitions_arrow(table, lake.table(*RETENTION), "day", [day.isoformat()])
        return MaterializeResult(
            metadata={
                **delta_write_metadata(result),
                "cutoff": events.isoformat(),
                "derived_cutoff": derived.isoformat(),
                "rows_removed": MetadataValue.json(removed),
            }
        )

    return monitoring_retention


LAKE_MAINTENANCE = ["monitoring", "lake_maintenance"]


def lake_maintenance(settings: PodrecSettings, calendar: Calendar) -> AssetsDefinition:
    upkeep_settings = settings.maintenance

    @asset(
        key=LAKE_MAINTENANCE,
        group_name="monitoring",
        kinds={"spark", "delta"},
        owners=["team:podrec"],
        partitions_def=calendar.daily,
        # A compaction that loses a race with a daily write is refused by Delta, nothing changed: retry.
        retry_policy=RetryPolicy(max_retries=2, delay=60, backoff=Backoff.EXPONENTIAL),
        description=(
            "Weekly upkeep of every contract table (podrec/lake/maintenance.py): compaction of the "
            f"partitions of the last {upkeep_settings.compact_days} days (PODREC_MAINTENANCE_COMPACT_DAYS; "
            "unpartitioned tables whole), then VACUUM LITE of the files unused for "
            f"{upkeep_settings.retain_hours} h (PODREC_MAINTENANCE_RETAIN_HOURS) — which is also when rows "
            "deleted by retention or a forget request leave storage. One row per table and run."
        ),
    )
    def monitoring_lake_maintenance(
        context: AssetExecutionContext, spark: LazyPySparkResource, lake: LakeResource
    ) -> MaterializeResult:
        day = date.fromisoformat(context.partition_key)
        done = upkeep(
            spark.spark_session,
            lake.root,
            CONTRACT_TABLES,
            day,
            upkeep_settings.compact_days,
            upkeep_settings.retain_hours,
        )
        table = pd.DataFrame(
            [{"day": day, **asdict(u)} for u in done], columns=["day", *Upkeep.__dataclass_fields__]
        ).astype({"files_removed": "int64", "files_added": "int64", "files_vacuumed": "int64"})
        result = replace_partitions_arrow(table, lake.table(*LAKE_MAINTENANCE), "day", [day.isoformat()])
        compacted, vacuumed = int(table["files_removed"].sum()), int(table["files_vacuumed"].sum())
        context.log.info(
            f"lake upkeep {day}: {len(done)} tables, {compacted} small files compacted, {vacuumed} vacuumed"
        )
        return MaterializeResult(
            metadata={
                **delta_write_metadata(result),
                "dagster/row_count": len(done),
                "files_compacted": compacted,
                "files_vacuumed": vacuumed,
                "tables": MetadataValue.md(table.drop(columns="day").to_markdown(index=False)),
            }
        )

    return monitoring_lake_maintenance


def sample_ratio_check(settings: PodrecSettings, calendar: Calendar) -> AssetChecksDefinition:
    @asset_check(
        asset=AB_ANALYSIS,
        name="sample_ratio",
        partitions_def=calendar.daily,
        description=(
            "The arms' listener counts match the configured split (chi-square, experiment so far): a p-value "
            "below PODREC_AB_SRM_P_VALUE means broken assignment or logging, and no difference can be "
            "trusted."
        ),
    )
    def ab_sample_ratio(context: AssetCheckExecutionContext, lake: LakeResource) -> AssetCheckResult:
        day = date.fromisoformat(context.partition_key)
        views = open_lake(lake.root, {"ab": tuple(AB_ANALYSIS)})
        rows = views.df("select * from ab where day = ? and level like '%_srm'", [day])
        return sample_ratio_result(rows, settings.ab.srm_p_value)

    return ab_sample_ratio


def sample_ratio_result(rows: pd.DataFrame, threshold: float) -> AssetCheckResult:
    """WARN when the experiment's (else the day's) sample-ratio p-value is below ``threshold``."""
    scope = "experiment_srm" if (rows["level"] == "experiment_srm").any() else "day_srm"
    mine = rows[rows["level"] == scope]
    if mine.empty:
        return AssetCheckResult(passed=True, metadata={"result": "no impressions of the experiment yet"})
    p = float(mine.loc[mine["metric"] == "srm_p_value", "value"].iloc[0])
    sizes = {r.policy: int(r.listeners) for r in mine[mine["metric"] == "listeners"].itertuples()}
    return AssetCheckResult(
        passed=bool(p >= threshold),
        severity=AssetCheckSeverity.WARN,
        metadata={"p_value": p, "threshold": threshold, "scope": scope.removesuffix("_srm"), **sizes},
    )


def drift_scores() -> AssetSpec:
    """Written by the drift checks as they run (checks/drift_checks.py), not by an asset of its own."""
    return AssetSpec(
        ["monitoring", "drift_scores"],
        group_name="monitoring",
        kinds={"delta"},
        owners=["team:podrec"],
        description=(
            "One row per day and drift check: the drifted share, each column's test and score, and the "
            "report's path when one was kept (drifting days and the newest day of a run). Written by the "
            "Evidently drift checks of silver/user_events, silver/daily_engagement, gold/recommendations and "
            "gold/episode_embeddings; reports under monitoring/drift_reports/<day>/."
        ),
    )


def definitions(settings: PodrecSettings, calendar: Calendar) -> Definitions:
    retention_job = define_asset_job(
        "retention",
        selection=AssetSelection.assets(RETENTION),
        description="Delete what podrec holds about listeners past the retention (a day's cutoffs).",
    )
    maintenance_job = define_asset_job(
        "lake_maintenance",
        selection=AssetSelection.assets(LAKE_MAINTENANCE),
        description="Compact the newest partitions of every table and VACUUM what no version needs.",
    )

    return Definitions(
        assets=[
            ab_analysis(settings, calendar),
            retention(settings, calendar),
            drift_scores(),
            lake_maintenance(settings, calendar),
        ],
        asset_checks=[sample_ratio_check(settings, calendar)],
        jobs=[
            define_asset_job(
                "monitoring",
                selection=AssetSelection.assets(["monitoring", "ab_analysis"]),
                description="A day's A/B analysis (per bucket and policy, with intervals).",
            ),
            retention_job,
            maintenance_job,
        ],
    )
