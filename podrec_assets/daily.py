"""The daily job: a day from clean events to the published lists.

The job spans the layers, so it lives here rather than beside one layer's assets. The automation
daemon runs these assets by their conditions (``automation.daily``); the job is what a backfill or a
person runs for a chosen day.
"""

from dagster import AssetSelection, Definitions, define_asset_job

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


def definitions() -> Definitions:
    job = define_asset_job(
        "daily",
        selection=daily_selection(),
        description=(
            "A day from clean events to the published lists: silver events, engagement and impressions, "
            "the listeners of coordinated plays held out of the model, the day's ALS model, every "
            "listener's list, the gated MongoDB publish, and the A/B analysis. "
            "Every table's checks run in the same run; a failed blocking check stops what is downstream "
            "of it, so a bad day never reaches MongoDB. The automation daemon runs these assets for "
            "yesterday at 01:30 UTC once the day's input is there; this job backfills or re-runs a day."
        ),
    )
    return Definitions(jobs=[job])
