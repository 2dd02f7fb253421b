"""Coordinated plays: the listeners whose events would steer the model, found in its window and held out.

The model counts listeners: implicit ALS learns an episode from whoever played it, popularity ranks by
listeners, and twenty of them give a new episode its own factors (``hybrid.full_weight_listeners``).
A listener id costs nothing, so a bot farm — or hijacked sessions — playing one episode from hundreds
of fresh ids moves it into real listeners' lists. Silver's bot filter
(``engagement.bot_max_events_per_day``) catches one id's impossible day; it cannot see many ids that
each look like a person. Two rules over the model window ending on a day (``window.py``), read from
silver.daily_engagement, flag listeners (``BurstSettings``):

- **burst** — in the window's last ``new_days`` days (the *recent* days), listeners first seen in the
  window within them are *new*, the other recent listeners *old*. An episode is a burst when at least
  ``min_new_listeners`` new listeners played it and its reach among them (the share who played it) is
  at least ``reach_ratio`` times its reach among old listeners, ``(m / M) / ((o + 1) / (O + 1))``. The
  old listeners are the baseline because a farm of new ids cannot move them; the +1 judges an episode
  no old listener played as if one had, and a window where no one is old flags nothing (a young lake,
  where every listener is new, cannot tell a burst from its first days). Comparing the recent days only
  keeps a fresh episode, which only recent listeners can have played, from looking like one. Every new
  listener who played a burst episode is flagged: a real newcomer among them sits out of the model for
  the window, and still gets a list.
- **rate** — a listener whose interactions per active day in the window (rows of daily engagement:
  distinct episodes a day, what one listener adds to the fit) exceed ``exp(median + rate_mads · MAD)``
  of the window's listeners' log rates, and ``rate_min_per_day``. Median and MAD hardly move with the
  heavy tail of real listening (or with the bots), and the floor keeps a population of identical
  listeners (MAD 0) from flagging its busiest.

Flags are silver.flagged_listeners rows (``FLAGGED_LISTENERS``), one partition per day, keyed by the
SHA-256 of the id (the forget audit's hash, ``podrec.privacy.user_hash``), never the id. The model of a
day holds out every listener flagged on any day of its window (``held_out``): their events stay in the
lake, but the ALS fit, the popularity behind the lists and the cold-start weights do not see them. A
flag stops counting once its day leaves the window; a flagged listener who keeps playing is judged
afresh then.

Cost follows the window: an aggregate per listener and per (listener, episode) of the recent days, in
Spark; the driver gets the per-episode counts (bounded by the catalog) and two quantiles. Flagged
listeners never leave Spark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pandas as pd

from podrec.recsys.window import in_window
from podrec.settings import BurstSettings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

TABLE = ("silver", "flagged_listeners")
BURST, RATE = "burst", "rate"
FLAGGED_LISTENERS = (
    "user_sha256 string, reasons array<string>, first_seen date, active_days int, interactions long, "
    "plays long, rate double, burst_episodes array<string>, flag_date date"
)
EPISODE_COLUMNS = ["episode_id", "new_listeners", "old_listeners", "reach_new", "reach_old", "ratio"]


def reach_ratio(new: int, old: int, new_total: int, old_total: int) -> float:
    """How many times more an episode reaches new listeners than old: ``(m / M) / ((o + 1) / (O + 1))``."""
    if new_total == 0:
        return 0.0
    return (new / new_total) / ((old + 1) / (old_total + 1))


def burst_episodes(
    per_episode: pd.DataFrame, new_total: int, old_total: int, rules: BurstSettings
) -> pd.DataFrame:
    """The burst episodes of ``per_episode`` (episode_id, new_listeners, old_listeners of the recent days;
    ``new_total``/``old_total``: the recent days' new and old listeners), with their reach among each and
    the ratio (``EPISODE_COLUMNS``), most new listeners first."""
    ratios = [
        reach_ratio(m, o, new_total, old_total)
        for m, o in zip(per_episode["new_listeners"], per_episode["old_listeners"], strict=True)
    ]
    scored = per_episode.assign(
        reach_new=per_episode["new_listeners"] / max(new_total, 1),
        reach_old=per_episode["old_listeners"] / max(old_total, 1),
        ratio=pd.Series(ratios, index=per_episode.index, dtype=float),
    )
    keep = (scored["new_listeners"] >= rules.min_new_listeners) & (scored["ratio"] >= rules.reach_ratio)
    out = scored.loc[keep, EPISODE_COLUMNS].sort_values(
        ["new_listeners", "episode_id"], ascending=[False, True]
    )
    return out.reset_index(drop=True)


def rate_threshold(median_log: float, mad_log: float, rules: BurstSettings) -> float:
    """Interactions per active day above which a listener is flagged: ``exp(median + k·MAD)`` of the log
    rates, never below ``rate_min_per_day``."""
    return max(rules.rate_min_per_day, math.exp(median_log + rules.rate_mads * mad_log))


@dataclass
class Detection:
    """One day's findings: the flags (``FLAGGED_LISTENERS`` rows, in Spark), the burst episodes and the
    bounds they were judged by."""

    flagged: DataFrame
    episodes: pd.DataFrame  # EPISODE_COLUMNS
    new_listeners: int  # new listeners of the recent days (M)
    old_listeners: int  # old listeners of the recent days (O)
    rate_threshold: float
    listeners: int  # listeners in the window
    _cached: DataFrame

    def release(self) -> None:
        """Drop the per-listener aggregate the flags are built from, once they are written."""
        self._cached.unpersist()


def detect(engagement: DataFrame, end: date, days: int, rules: BurstSettings) -> Detection:
    """Flag the listeners of the window of ``days`` ending on ``end`` by both rules (module docstring).

    ``engagement``: silver.daily_engagement (user_id, episode_id, plays, event_date); only the window is
    read. The flags are computed lazily from a cached per-listener aggregate: call ``release`` once they
    are written.
    """
    from pyspark.sql import functions as F

    window = engagement.where(in_window("event_date", end, days)).select(
        "user_id", "episode_id", "plays", "event_date"
    )
    recent_from = F.lit(end - timedelta(days=rules.new_days - 1))
    listeners = (
        window.groupBy("user_id")
        .agg(
            F.min("event_date").alias("first_seen"),
            F.max("event_date").alias("last_seen"),
            F.countDistinct("event_date").cast("int").alias("active_days"),
            F.count(F.lit(1)).alias("interactions"),
            F.sum("plays").cast("long").alias("plays"),
        )
        .withColumn("rate", F.col("interactions") / F.col("active_days"))
        .withColumn("new", F.col("first_seen") >= recent_from)
        .persist()
    )
    counts = listeners.agg(
        F.count(F.lit(1)).alias("all"),
        F.count(F.when(F.col("new"), True)).alias("new"),
        F.count(F.when(~F.col("new") & (F.col("last_seen") >= recent_from), True)).alias("old"),
    ).first()
    recent = (
        window.where(F.col("event_date") >= recent_from)
        .select("user_id", "episode_id")
        .distinct()
        .join(listeners.select("user_id", "new"), "user_id")
    )
    per_episode = (
        recent.groupBy("episode_id")
        .agg(
            F.count(F.when(F.col("new"), True)).alias("new_listeners"),
            F.count(F.when(~F.col("new"), True)).alias("old_listeners"),
        )
        .toPandas()
    )
    bursts = burst_episodes(per_episode, int(counts["new"]), int(counts["old"]), rules)
    threshold = _rate_threshold(listeners, rules)

    spark = engagement.sparkSession
    targets = spark.createDataFrame([(e,) for e in bursts["episode_id"]], "episode_id string")
    in_burst = (
        recent.where(F.col("new"))
        .join(F.broadcast(targets), "episode_id")
        .groupBy("user_id")
        .agg(F.sort_array(F.collect_set("episode_id")).alias("burst_episodes"))
    )
    burst, busy = F.col("burst_episodes").isNotNull(), F.col("rate") > F.lit(threshold)
    flagged = (
        listeners.join(in_burst, "user_id", "left")
        .where(burst | busy)
        .select(
            F.sha2("user_id", 256).alias("user_sha256"),
            F.filter(
                F.array(F.when(burst, F.lit(BURST)), F.when(busy, F.lit(RATE))), lambda r: r.isNotNull()
            ).alias("reasons"),
            "first_seen",
            "active_days",
            "interactions",
            "plays",
            "rate",
            F.coalesce("burst_episodes", F.array().cast("array<string>")).alias("burst_episodes"),
            F.lit(end).alias("flag_date"),
        )
    )
    return Detection(
        flagged=flagged,
        episodes=bursts,
        new_listeners=int(counts["new"]),
        old_listeners=int(counts["old"]),
        rate_threshold=threshold,
        listeners=int(counts["all"]),
        _cached=listeners,
    )


def _rate_threshold(listeners: DataFrame, rules: BurstSettings) -> float:
    """``rate_threshold`` from the median and MAD of the listeners' log rates (Spark's approximate
    quantiles, 0.1% rank error: two numbers reach the driver, whatever the number of listeners)."""
    from pyspark.sql import functions as F

    logs = listeners.select(F.log("rate").alias("log_rate"))
    median = logs.approxQuantile("log_rate", [0.5], 0.001)
    if not median:  # an empty window: no one to flag
        return rate_threshold(0.0, 0.0, rules)
    deviations = logs.select(F.abs(F.col("log_rate") - F.lit(median[0])).alias("deviation"))
    (mad,) = deviations.approxQuantile("deviation", [0.5], 0.001)
    return rate_threshold(median[0], mad, rules)


def held_out(flags: DataFrame, end: date, days: int) -> DataFrame:
    """The hashes (``user_sha256``) of the listeners flagged on any day of the window of ``days`` ending on
    ``end``: who the model of that day does not see."""
    return flags.where(in_window("flag_date", end, days)).select("user_sha256").distinct()


def held_out_in_lake(spark: SparkSession, uri: str, end: date, days: int) -> DataFrame | None:
    """``held_out`` of silver.flagged_listeners at ``uri``; None before the table's first day."""
    from podrec.lake.delta import exists, read

    return held_out(read(spark, uri), end, days) if exists(spark, uri) else None


def without_held_out(frame: DataFrame, held: DataFrame | None) -> DataFrame:
    """``frame`` (with ``user_id``) without the rows of held-out listeners (``held``: user_sha256)."""
    from pyspark.sql import functions as F

    if held is None:
        return frame
    return frame.join(held, F.sha2(frame["user_id"], 256) == held["user_sha256"], "left_anti")


@dataclass(frozen=True)
class HoldOut:
    """What the model of a day does not see: listeners, their engagement rows and plays in the window,
    and the episodes that lose at least one listener's engagement (those flagged as bursts first)."""

    listeners: int
    engagement_rows: int
    plays: int
    episodes: int
    burst_episodes: list[str]


def hold_out_summary(engagement: DataFrame, flags: DataFrame, end: date, days: int) -> HoldOut:
    """``HoldOut`` of the window of ``days`` ending on ``end``: counts from Spark, and the burst episodes
    flagged in it (bounded by the catalog)."""
    from pyspark.sql import functions as F

    held = held_out(flags, end, days)
    window = engagement.where(in_window("event_date", end, days))
    rows = window.join(held, F.sha2(window["user_id"], 256) == held["user_sha256"], "left_semi")
    totals = rows.agg(
        F.count(F.lit(1)).alias("rows"),
        F.coalesce(F.sum("plays"), F.lit(0)).alias("plays"),
        F.countDistinct("episode_id").alias("episodes"),
    ).first()
    targets = (
        flags.where(in_window("flag_date", end, days))
        .select(F.explode("burst_episodes").alias("episode_id"))
        .distinct()
        .orderBy("episode_id")
    )
    return HoldOut(
        listeners=held.count(),
        engagement_rows=int(totals["rows"]),
        plays=int(totals["plays"]),
        episodes=int(totals["episodes"]),
        burst_episodes=[r["episode_id"] for r in targets.collect()],
    )
