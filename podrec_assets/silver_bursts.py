"""Silver, the model's guard: the listeners of coordinated plays, flagged day by day.

``silver/flagged_listeners`` runs the two rules of ``podrec/recsys/bursts.py`` (many new listeners on
the same episodes; one listener far busier than the rest) over the model window ending on its day.
The day's ALS fit and lists (``gold_recommender.py``) leave out every listener flagged on a day of
their window; the checks in ``checks/burst_checks.py`` count what was held out and prove the fit saw
none of it.
"""

from datetime import date

import pandas as pd
from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    Definitions,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import functions as F

from podrec.lake.delta import read, read_required, replace_partitions
from podrec.recsys.bursts import TABLE, detect
from podrec.recsys.window import window_start
from podrec.settings import PodrecSettings
from podrec_assets.calendar import Calendar
from podrec_assets.metadata import delta_write_metadata
from resources import LakeResource

ENGAGEMENT = ["silver", "daily_engagement"]


def flagged_listeners(settings: PodrecSettings, calendar: Calendar) -> AssetsDefinition:
    rules = settings.bursts

    @asset(
        key=list(TABLE),
        group_name="silver",
        kinds={"spark", "delta"},
        owners=["team:podrec"],
        partitions_def=calendar.daily,
        deps=[AssetDep(ENGAGEMENT, partition_mapping=calendar.model_window)],
        backfill_policy=BackfillPolicy.multi_run(1),  # each day judges its own window
        # The rules' values: a day flagged under other thresholds is out of date.
        code_version=rules.fingerprint(),
        description=(
            "Listeners whose plays in the model window ending on the day look coordinated — new listeners "
            "crowding the same episodes far beyond what old listeners do, or a rate of interactions far "
            "beyond the population's — by the SHA-256 of their id, with the reasons and the episodes. The "
            "day's ALS fit and popularity leave out everyone flagged on a day of their window; their "
            "events stay in the lake."
        ),
    )
    def silver_flagged_listeners(
        context: AssetExecutionContext, spark: LazyPySparkResource, lake: LakeResource
    ) -> MaterializeResult:
        session = spark.spark_session
        day = date.fromisoformat(context.partition_key)
        days = settings.als.window_days
        engagement = read_required(session, lake.table(*ENGAGEMENT), "materialize silver/daily_engagement")
        found = detect(engagement, day, days, rules)
        uri = lake.table(*TABLE)
        result = replace_partitions(found.flagged, uri, "flag_date", [day.isoformat()])
        found.release()
        written = read(session, uri).where(F.col("flag_date") == F.lit(day))
        by_reason = {
            r["reason"]: r["count"]
            for r in written.select(F.explode("reasons").alias("reason")).groupBy("reason").count().collect()
        }
        context.log.info(
            f"silver.flagged_listeners {day}: {result.rows_written} of {found.listeners} listeners flagged "
            f"{by_reason}, {len(found.episodes)} burst episode(s)"
        )
        return MaterializeResult(
            metadata={
                **delta_write_metadata(result),
                "listeners_in_window": found.listeners,
                "flagged_by_reason": MetadataValue.json(by_reason),
                "burst_episodes": MetadataValue.md(_episodes_markdown(found.episodes)),
                "new_listeners": found.new_listeners,
                "old_listeners": found.old_listeners,
                "rate_threshold_per_day": round(found.rate_threshold, 2),
                "window": f"{window_start(day, days)}..{day}",
                "rules": MetadataValue.json(rules.model_dump()),
            }
        )

    return silver_flagged_listeners


def _episodes_markdown(episodes: pd.DataFrame) -> str:
    """The burst episodes as a table (episode ids only: no listener appears in metadata)."""
    if episodes.empty:
        return "No burst episode."
    shown = episodes.head(20).rename(
        columns={
            "new_listeners": "new listeners",
            "old_listeners": "old listeners",
            "reach_new": "reach among new",
            "reach_old": "reach among old",
        }
    )
    return shown.to_markdown(index=False, floatfmt=".3f")


def definitions(settings: PodrecSettings, calendar: Calendar) -> Definitions:
    return Definitions(assets=[flagged_listeners(settings, calendar)])
