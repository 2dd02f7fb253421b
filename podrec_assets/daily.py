"""The daily job: a day from clean events to the published lists, and the schedule that runs it.

The job spans the layers, so it lives here rather than beside one layer's assets. Its schedule is
built from the partitioned job, so scheduled runs and backfills share one definition.
"""

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    Definitions,
    build_schedule_from_partitioned_job,
    define_asset_job,
)

DAILY_ASSETS = (
    ["silver", "user_events"],
    ["silver", "daily_engagement"],
    ["silver", "flagged_listeners"],
    ["silver", "impressions"],
    ["gold", "als_factors"],
    ["gold", "recommendations"],
    ["mongo", "serving_version"],
    ["monitoring", "ab_analysis"],
)


def daily_selection() -> AssetSelection:
    return AssetSelection.assets(*DAILY_ASSETS)


def definitions(running: bool = False) -> Definitions:
    """The job and its schedule; ``running``: the schedule starts switched on (the cluster profile)."""
    job = define_asset_job(
        "daily",
        selection=daily_selection(),
        description=(
            "A day from clean events to the published lists: silver events, engagement and impressions, "
            "the listeners of coordinated plays held out of the model, the day's ALS model, every "
            "listener's list, the gated MongoDB publish, and the A/B analysis. "
            "Every table's checks run in the same run; a failed blocking check stops what is downstream "
            "of it, so a bad day never reaches MongoDB. The schedule runs it for yesterday; a backfill "
            "re-runs past days."
        ),
    )
    # After the episodes have landed (00:30) and the Kafka sensor has drained the night's events.
    schedule = build_schedule_from_partitioned_job(
        job,
        hour_of_day=1,
        minute_of_hour=30,
        default_status=DefaultScheduleStatus.RUNNING if running else DefaultScheduleStatus.STOPPED,
    )
    return Definitions(jobs=[job], schedules=[schedule])
