"""Evidently drift checks: each dated table's day against the days before it, reports kept in the lake.

A check warns (severity WARN, never blocking) when the share of drifted columns reaches
``PODREC_DRIFT_SHARE``; either way its metadata links the HTML report and the JSON beside it, which
the dashboard lists too. The reference window is the ``PODREC_DRIFT_REFERENCE_DAYS`` days before.
"""

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
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
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from podrec.lake.delta import read, replace_partitions_arrow
from podrec.language import language_sql
from podrec.quality.drift import (
    Drift,
    column_drift,
    column_scores,
    embedding_drift,
    reports_root,
    save_report,
    score_rows,
)
from podrec.recsys.window import in_window, window_start
from podrec.settings import DriftSettings, PodrecSettings
from resources import LakeResource

EMBEDDING_DISTANCE = 0.2  # Evidently's default for the cosine distance of mean embeddings


def _day_by_day(
    df: DataFrame, day_column: str, days: list[date], numerical: list[str], categorical: list[str],
    drift: DriftSettings,
) -> list[tuple[str, Drift, object]]:  # fmt: skip
    """Each day against the reference days before it, from one scan of the whole window; at most
    ``drift.sample_rows`` rows of each day (a seeded sample: distributions, not rows, are compared).
    Every day is scored; the Evidently report is built for the days that drift and the newest one."""
    reference_days = timedelta(days=drift.reference_days)
    window = df.where(F.col(day_column).between(F.lit(days[0] - reference_days), F.lit(days[-1])))
    ranked = window.withColumn(
        "_draw", F.row_number().over(Window.partitionBy(day_column).orderBy(F.xxhash64(*df.columns)))
    )
    rows = ranked.where(F.col("_draw") <= drift.sample_rows).drop("_draw").toPandas()
    on = pd.to_datetime(rows.pop(day_column)).dt.date
    findings: list[tuple[str, Drift, object]] = []
    for day in days:
        current, reference = rows[on == day], rows[(on >= day - reference_days) & (on < day)]
        found = column_scores(current, reference, numerical, categorical, drift.share)
        snapshot = None
        if found.warn or day == days[-1]:
            found, snapshot = column_drift(current, reference, numerical, categorical, drift.share)
        findings.append((day.isoformat(), found, snapshot))
    return findings


def _days(context: AssetCheckExecutionContext) -> list[date]:
    """The run's day, or each day of a range run (a backfill in one run checks every day)."""
    return [date.fromisoformat(k) for k in context.partition_keys]


def _result(findings: list[tuple[str, Drift, object]], lake: LakeResource, name: str) -> AssetCheckResult:
    """One result for the run's days: warn if any day drifted; link the newest day's report.

    Every day's scores go to ``monitoring.drift_scores``; a report is written for each day that has
    one (the days that drifted and the newest day), so a year's backfill leaves tens, not hundreds."""
    root = reports_root(lake.root)
    saved = [
        (day, replace(d, report=save_report(snap, root, day, name))) if snap is not None else (day, d)
        for day, d, snap in findings
    ]
    replace_partitions_arrow(
        score_rows(saved, name), lake.table("monitoring", "drift_scores"), "day", [d for d, _ in saved],
        only={"check": name},
    )  # fmt: skip
    newest = saved[-1][1]
    metadata: dict = {
        "drifted_share": round(newest.share, 4),
        "drifted_columns": ", ".join(c for c, d in newest.columns.items() if d.drifted) or "none",
        "current_rows": newest.current_rows,
        "reference_rows": newest.reference_rows,
    }
    if newest.report:
        html = newest.report["html"]
        metadata["report"] = MetadataValue.url(html if "://" in html else f"file://{html}")
        metadata["report_json"] = MetadataValue.path(newest.report["json"])
    warned = [d for d, drift in saved if drift.warn]
    if len(saved) > 1:
        metadata["days_drifted"] = ", ".join(warned) or "none"
    metadata["result"] = MetadataValue.md("\n\n".join(f"**{d}**: {drift.markdown()}" for d, drift in saved))
    return AssetCheckResult(passed=not warned, severity=AssetCheckSeverity.WARN, metadata=metadata)


def drift_checks(settings: PodrecSettings, daily: PartitionsDefinition) -> list[AssetChecksDefinition]:
    """The four drift checks, with the deployment's reference window, threshold and model window."""

    @asset_check(
        asset=["silver", "daily_engagement"],
        partitions_def=daily,
        description="Evidently: a day's plays, listening, completion, engagement, languages vs days before.",
    )
    def engagement_drift(
        context: AssetCheckExecutionContext, spark: LazyPySparkResource, lake: LakeResource
    ) -> AssetCheckResult:
        df = read(spark.spark_session, lake.table("silver", "daily_engagement")).select(
            "plays", "listen_seconds", "max_completion", "engagement",
            F.expr(language_sql("locale")).alias("language"), "event_date",
        )  # fmt: skip
        numerical = ["plays", "listen_seconds", "max_completion", "engagement"]
        findings = _day_by_day(df, "event_date", _days(context), numerical, ["language"], settings.drift)
        return _result(findings, lake, "engagement")

    @asset_check(
        asset=["silver", "user_events"],
        partitions_def=daily,
        description="Evidently: a day's mix of event types, listener languages and devices vs days before.",
    )
    def event_mix_drift(
        context: AssetCheckExecutionContext, spark: LazyPySparkResource, lake: LakeResource
    ) -> AssetCheckResult:
        df = read(spark.spark_session, lake.table("silver", "user_events")).select(
            "event_type", F.expr(language_sql("locale")).alias("language"),
            F.coalesce("device", F.lit("unknown")).alias("device"), "event_date",
        )  # fmt: skip
        categorical = ["event_type", "language", "device"]
        findings = _day_by_day(df, "event_date", _days(context), [], categorical, settings.drift)
        return _result(findings, lake, "event_mix")

    @asset_check(
        asset=["gold", "recommendations"],
        partitions_def=daily,
        description=(
            "Evidently: the day's recommendation scores and the popularity (share of the window's plays) "
            "of what is recommended vs the days before."
        ),
    )
    def score_popularity_drift(
        context: AssetCheckExecutionContext, spark: LazyPySparkResource, lake: LakeResource
    ) -> AssetCheckResult:
        session = spark.spark_session
        days = _days(context)
        start = days[0] - timedelta(days=settings.drift.reference_days)
        recs = read(session, lake.table("gold", "recommendations")).where(
            F.col("rec_date").between(F.lit(start), F.lit(days[-1])) & (F.col("policy") != "popular")
        )
        # Literal bounds first, so Delta prunes to the partitions the windows below can reach: the
        # per-row window alone is a join condition, and a join condition reads the whole history.
        plays = (
            read(session, lake.table("silver", "daily_engagement"))
            .where(F.col("event_date").between(F.lit(window_start(start, settings.als.window_days)),
                                               F.lit(days[-1])))
            .select("episode_id", "event_date", "plays")
        )  # fmt: skip
        # Popularity as the lists saw it: plays in the model window ending on the list's day.
        in_model_window = in_window("event_date", F.col("rec_date"), settings.als.window_days)
        # As a share of all the window's plays, so a growing audience is not mistaken for drift.
        totals = (
            recs.select("rec_date").distinct().join(plays).where(in_model_window)
            .groupBy("rec_date").agg(F.sum("plays").alias("total"))
        )  # fmt: skip
        popularity = (
            recs.select("rec_date", "episode_id").distinct().join(plays, "episode_id").where(in_model_window)
            .groupBy("rec_date", "episode_id").agg(F.sum("plays").alias("plays"))
            .join(totals, "rec_date")
            .select("rec_date", "episode_id", (F.col("plays") / F.col("total")).alias("popularity"))
        )  # fmt: skip
        df = recs.join(popularity, ["rec_date", "episode_id"], "left").select(
            "score", F.coalesce("popularity", F.lit(0.0)).alias("popularity"), "rec_date"
        )
        findings = _day_by_day(df, "rec_date", days, ["score", "popularity"], [], settings.drift)
        return _result(findings, lake, "scores_popularity")

    @asset_check(
        asset=["gold", "episode_embeddings"],
        description=(
            "Evidently: transcript embeddings of the newest episodes (first seen on the catalog's latest "
            "day) vs the episodes seen before them."
        ),
    )
    def new_episode_embedding_drift(spark: LazyPySparkResource, lake: LakeResource) -> AssetCheckResult:
        session = spark.spark_session
        catalog = read(session, lake.table("silver", "episodes")).select("episode_id", "first_seen_date")
        newest = catalog.agg(F.max("first_seen_date")).collect()[0][0]
        vectors = (
            read(session, lake.table("gold", "episode_embeddings"))
            .join(catalog, "episode_id")
            .select("vector", (F.col("first_seen_date") == F.lit(newest)).alias("new"))
            .toPandas()
        )

        def stack(rows: pd.Series) -> np.ndarray:
            return np.vstack(rows.to_numpy()) if len(rows) else np.empty((0, 0))

        drift, snapshot = embedding_drift(
            stack(vectors.loc[vectors["new"], "vector"]), stack(vectors.loc[~vectors["new"], "vector"]),
            EMBEDDING_DISTANCE,
        )  # fmt: skip
        return _result([(str(newest), drift, snapshot)], lake, "new_episode_embeddings")

    return [engagement_drift, event_mix_drift, score_popularity_drift, new_episode_embedding_drift]
