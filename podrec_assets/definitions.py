"""The podrec code location: every asset, check, job, schedule, sensor and resource meets here."""

from dagster import Definitions

from checks import bronze as bronze_checks
from podrec.settings import load_settings
from podrec_assets.bronze import bronze_episodes
from podrec_assets.jobs import bronze_daily_job, bronze_daily_schedule
from resources import build_resources

defs = Definitions(
    assets=[bronze_episodes],
    asset_checks=[bronze_checks.bronze_episodes_unique_per_day],
    jobs=[bronze_daily_job],
    schedules=[bronze_daily_schedule],
    resources=build_resources(load_settings()),
)
