"""Checks of the coordinated-plays guard (podrec/recsys/bursts.py): what it held out, and that it held.

- ``coordinated_plays`` (silver/flagged_listeners, WARN): passes on a day nothing was flagged; otherwise
  warns with what the day's model does not see — listeners, episodes, engagement rows and plays held
  out of the window — and the burst episodes. Counts and episode ids only: no listener, not even hashed.
- ``no_held_out_listener`` (gold/als_factors, blocking): no listener held out of the day's window has
  factors in the day's model, so a hold-out that did not reach the fit never reaches the lists.
"""

from datetime import date

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    MetadataValue,
    PartitionsDefinition,
    asset_check,
)
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import functions as F

from podrec.lake.delta import read, read_required
from podrec.recsys.bursts import TABLE, held_out_in_lake, hold_out_summary
from podrec.recsys.window import window_start
from podrec.settings import PodrecSettings
from resources import LakeResource

EXAMPLES = 5


def burst_checks(settings: PodrecSettings, daily: PartitionsDefinition) -> list[AssetChecksDefinition]:
    """The guard's two checks, over the deployment's model window."""
    days = settings.als.window_days

    @asset_check(
        asset=list(TABLE),
        partitions_def=daily,
        description=(
            "Warns when listeners were flagged on the day, with what the day's model leaves out: listeners, "
            "episodes, engagement rows and plays held out of its window, and the burst episodes."
        ),
    )
    def coordinated_plays(
        context: AssetCheckExecutionContext, spark: LazyPySparkResource, lake: LakeResource
    ) -> AssetCheckResult:
        session = spark.spark_session
        day = date.fromisoformat(context.partition_key)
        flags = read_required(session, lake.table(*TABLE), "materialize silver/flagged_listeners")
        today = flags.where(F.col("flag_date") == F.lit(day))
        by_reason = {
            r["reason"]: r["count"]
            for r in today.select(F.explode("reasons").alias("reason")).groupBy("reason").count().collect()
        }
        engagement = read_required(session, lake.table("silver", "daily_engagement"), "materialize it")
        held = hold_out_summary(engagement, flags, day, days)
        flagged = today.count()
        shown = ", ".join(held.burst_episodes[:20]) or "none"
        return AssetCheckResult(
            passed=flagged == 0,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "listeners_flagged": flagged,
                "flagged_by_reason": MetadataValue.json(by_reason),
                "listeners_held_out": held.listeners,
                "episodes_affected": held.episodes,
                "burst_episodes": len(held.burst_episodes),
                "engagement_rows_held_out": held.engagement_rows,
                "plays_held_out": held.plays,
                "result": MetadataValue.md(
                    f"**{flagged}** listener(s) flagged on {day} ({_reasons(by_reason)}). The model of "
                    f"{day} (window {window_start(day, days)}..{day}) leaves out **{held.listeners}** "
                    f"listener(s) flagged in its window: {held.engagement_rows} engagement rows, "
                    f"{held.plays} plays, touching {held.episodes} episode(s). Burst episodes: {shown}. "
                    "Their events stay in the lake; silver/flagged_listeners says why, by hashed listener."
                ),
            },
        )

    @asset_check(
        asset=["gold", "als_factors"],
        partitions_def=daily,
        blocking=True,
        description=(
            "No listener flagged in silver/flagged_listeners on a day of the model window has factors in the "
            "day's model (serving gate: coordinated plays never steer the lists)."
        ),
    )
    def no_held_out_listener(
        context: AssetCheckExecutionContext, spark: LazyPySparkResource, lake: LakeResource
    ) -> AssetCheckResult:
        session = spark.spark_session
        day = date.fromisoformat(context.partition_key)
        held = held_out_in_lake(session, lake.table(*TABLE), day, days)
        if held is None:
            return AssetCheckResult(
                passed=True,
                severity=AssetCheckSeverity.ERROR,
                metadata={"held_out": 0, "in_model": 0, "result": "No silver/flagged_listeners yet."},
            )
        users = (
            read(session, lake.table("gold", "als_factors"))
            .where((F.col("model_date") == F.lit(day)) & (F.col("side") == "user"))
            .select(F.sha2("id", 256).alias("user_sha256"))
        )
        leaked = users.join(held, "user_sha256", "left_semi")
        found = leaked.count()
        examples = [f"sha256:{r['user_sha256'][:12]}" for r in leaked.limit(EXAMPLES).collect()]
        return AssetCheckResult(
            passed=found == 0,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "held_out": held.count(),
                "in_model": found,
                "result": MetadataValue.md(
                    "Every held-out listener is absent from the model."
                    if not found
                    else f"**{found}** held-out listener(s) have factors in the model of {day}, e.g. "
                    f"{', '.join(examples)}; the lists of that model are not published, the previous "
                    "version keeps serving."
                ),
            },
        )

    return [coordinated_plays, no_held_out_listener]


def _reasons(by_reason: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(by_reason.items())) or "none"
