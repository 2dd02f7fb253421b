"""Jobs and schedules, built from the partitioned assets so runs and backfills share one definition."""

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

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

# Runs shortly after midnight UTC for the day that just ended.
bronze_daily_schedule = build_schedule_from_partitioned_job(
    bronze_daily_job, hour_of_day=0, minute_of_hour=30
)
