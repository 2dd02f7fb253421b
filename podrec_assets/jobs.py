"""Jobs and schedules, built from the partitioned assets so runs and backfills share one definition."""

from datetime import timedelta

from dagster import (
    AssetSelection,
    RunRequest,
    ScheduleEvaluationContext,
    build_schedule_from_partitioned_job,
    define_asset_job,
    schedule,
)

bronze_daily_job = define_asset_job(
    "bronze_daily",
    selection=AssetSelection.assets(["bronze", "episodes"]),
    description="Land a day of raw data in the bronze layer.",
)

episode_catalog_job = define_asset_job(
    "episode_catalog",
    selection=AssetSelection.assets(["silver", "episodes"]),
    description="Rebuild the current episode catalog with its canonical (language-variant) ids.",
)

content_job = define_asset_job(
    "content",
    selection=AssetSelection.assets(
        ["silver", "transcripts"], ["gold", "episode_embeddings"], ["gold", "episode_similarity"]
    ),
    description="Transcribe what is new, embed what changed, rebuild episode similarity.",
)

engagement_job = define_asset_job(
    "engagement",
    selection=AssetSelection.assets(["silver", "user_events"], ["silver", "daily_engagement"]),
    description="Clean a day's (or a range's) events and score the day's engagement.",
)

recommendations_job = define_asset_job(
    "recommendations",
    selection=AssetSelection.assets(
        ["gold", "als_factors"], ["gold", "recommendations"], ["mongo", "serving_version"]
    ),
    description="A day's ALS model, every listener's list, published to MongoDB behind its gate.",
)

evaluation_job = define_asset_job(
    "evaluation",
    selection=AssetSelection.assets(["gold", "evaluation"]),
    description="Offline evaluation of every policy on the engagement up to a date.",
)

monitoring_job = define_asset_job(
    "monitoring",
    selection=AssetSelection.groups("monitoring"),
    description="A day's A/B analysis (per bucket and policy, with intervals).",
)

daily_job = define_asset_job(
    "daily",
    selection=AssetSelection.assets(
        ["silver", "user_events"], ["silver", "daily_engagement"], ["gold", "als_factors"],
        ["gold", "recommendations"], ["mongo", "serving_version"], ["monitoring", "ab_analysis"],
    ),
    description=(
        "A day from clean events to the published lists: silver events and engagement, the day's ALS "
        "model, every listener's list, the gated MongoDB publish, and the A/B analysis. Every table's "
        "checks run in the same run; a failed blocking check stops what is downstream of it, so a bad "
        "day never reaches MongoDB. The schedule runs it for yesterday; a backfill re-runs past days."
    ),
)  # fmt: skip

# Runs shortly after midnight UTC for the day that just ended.
bronze_daily_schedule = build_schedule_from_partitioned_job(
    bronze_daily_job, hour_of_day=0, minute_of_hour=30
)

# After the episodes have landed (00:30) and the Kafka sensor has drained the night's events.
daily_schedule = build_schedule_from_partitioned_job(daily_job, hour_of_day=1, minute_of_hour=30)


@schedule(
    job=evaluation_job,
    cron_schedule="0 3 * * 1",
    execution_timezone="UTC",
    description="Mondays: the slower offline evaluation of every policy as of the day before.",
)
def weekly_evaluation_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    # The partition comes from the tick's own time, never the clock, so a late tick evaluates the
    # day it was meant for; run_key makes a repeated tick a no-op.
    day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    return RunRequest(run_key=f"evaluation-{day}", partition_key=day)
