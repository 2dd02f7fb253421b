"""From listening events to implicit feedback: silver.user_events and silver.daily_engagement.

Implicit feedback (docs/design.md, Rules): the preference is binary — did they engage? — and the
confidence varies. A full listen with a like is strong evidence; a skip in the first seconds is a
confident *negative*, not a zero. The score is signed so ALS can use it directly: Spark's implicit
ALS takes preference = [score > 0] and confidence = 1 + alpha·|score|.

Shares alone would make a 5-minute episode finished and 5 minutes of a 2-hour episode mean the
same (or the second a rejection: 4% is an early skip). So time counts too: listening adds
``time_weight`` per ``time_cap_s`` heard (capped there), and an early skip's negative fades with the
time heard, to nothing at ``early_skip_max_s``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from podrec.settings import EngagementSettings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

COMPLETED_AT = 0.95  # the furthest point counts as a completed listen from here
MAX_REPLAYS = 3


def engagement_scores(day: pd.DataFrame, weights: EngagementSettings) -> pd.DataFrame:
    """Add ``engagement`` and ``confidence`` to per-(user, episode, day) aggregates.

    Needs columns plays, max_completion, likes, early_skip and listen_seconds. An early skip (nothing
    heard past ``early_skip_fraction``) scores ``early_skip_weight · (1 - heard / early_skip_max_s)``
    whatever else happened — a confident negative after seconds, a weak one after minutes; otherwise
    the score grows with how far they got, completion, a like, replays and the time heard.
    """
    completion = day["max_completion"].fillna(0.0).clip(0.0, 1.0).to_numpy()
    heard = day["listen_seconds"].fillna(0.0).clip(lower=0.0).to_numpy()
    positive = (
        weights.listen_weight * completion
        + weights.complete_weight * (completion >= COMPLETED_AT)
        + weights.like_weight * (day["likes"].to_numpy() > 0)
        + weights.replay_weight * np.clip(day["plays"].to_numpy() - 1, 0, MAX_REPLAYS)
        + weights.time_weight * np.minimum(heard, weights.time_cap_s) / weights.time_cap_s
    )
    early = (
        day["early_skip"].to_numpy().astype(bool)
        & (completion < weights.early_skip_fraction)
        & (heard < weights.early_skip_max_s)
    )
    engagement = np.where(
        early, weights.early_skip_weight * (1.0 - heard / weights.early_skip_max_s), positive
    )
    return day.assign(engagement=engagement.astype(float), confidence=np.abs(engagement).astype(float))


@dataclass(frozen=True)
class CleanedEvents:
    kept: DataFrame
    dropped: dict[str, int]
    marked: DataFrame  # cached: kept and dropped both come from it

    def release(self) -> None:
        self.marked.unpersist()


def clean_events(events: DataFrame, bot_max_events_per_day: int) -> CleanedEvents:
    """Validated, de-duplicated, bot-filtered events (``silver.user_events``).

    Bronze already holds each event id once and only well-formed records; silver removes what
    would mislead a model: positions past the end of the episode, a client's retry of the same
    event under a new id, and users whose volume in a day no listener could produce. Dropped
    rows stay in bronze; their counts by reason are returned for the asset's metadata.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    same_event = Window.partitionBy(
        "user_id", "episode_id", "event_type", "occurred_at", "position_s"
    ).orderBy("event_id")
    per_user_day = Window.partitionBy("user_id", "event_date")
    marked = (
        events.withColumn("_copy", F.row_number().over(same_event))
        .withColumn("_user_day_events", F.count(F.lit(1)).over(per_user_day))
        .withColumn(
            "drop_reason",
            F.when(
                F.col("position_s").isNotNull()
                & F.col("episode_duration_s").isNotNull()
                & (F.col("position_s") > F.col("episode_duration_s") * 1.05 + 5),
                F.lit("position past the end of the episode"),
            )
            .when(F.col("_copy") > 1, F.lit("duplicate of an event under another id"))
            .when(F.col("_user_day_events") > bot_max_events_per_day, F.lit("bot: too many events in a day")),
        )
        .drop("_copy", "_user_day_events")
    ).persist()
    dropped = {
        r["drop_reason"]: r["count"]
        for r in marked.where("drop_reason IS NOT NULL").groupBy("drop_reason").count().collect()
    }
    return CleanedEvents(
        kept=marked.where("drop_reason IS NULL").drop("drop_reason"), dropped=dropped, marked=marked
    )


def engagement_by_day(events: DataFrame, weights: EngagementSettings) -> DataFrame:
    """One row per (user_id, episode_id, event_date) with the signed engagement score."""
    from pyspark.sql import functions as F

    from podrec.lake.schemas import SILVER_DAILY_ENGAGEMENT

    duration = F.col("episode_duration_s")
    fraction = F.when(F.col("event_type") == "complete", F.lit(1.0)).when(
        duration > 0, F.least(F.lit(1.0), F.col("position_s") / duration)
    )
    # Listening time: the furthest point of each session, summed over the day's sessions.
    sessions = events.groupBy("user_id", "episode_id", "event_date", "session_id").agg(
        F.max(F.when(F.col("event_type") == "complete", duration).otherwise(F.col("position_s"))).alias(
            "reach"
        )
    )
    listened = sessions.groupBy("user_id", "episode_id", "event_date").agg(
        F.sum(F.coalesce("reach", F.lit(0.0))).alias("listen_seconds")
    )
    per_day = events.groupBy("user_id", "episode_id", "event_date").agg(
        # A play at position 0 starts a listen; a play mid-episode resumes one.
        F.sum(
            ((F.col("event_type") == "play") & (F.coalesce("position_s", F.lit(0.0)) < 1.0)).cast("int")
        ).alias("plays"),
        F.max(fraction).alias("max_completion"),
        (
            F.sum((F.col("event_type") == "like").cast("int"))
            - F.sum((F.col("event_type") == "unlike").cast("int"))
        ).alias("likes"),
        F.sum((F.col("event_type") == "skip").cast("int")).alias("skips"),
        F.max((F.col("event_type") == "skip") & (fraction < F.lit(weights.early_skip_fraction))).alias(
            "early_skip"
        ),
        F.max_by("locale", "occurred_at").alias("locale"),
    )
    joined = per_day.join(listened, ["user_id", "episode_id", "event_date"]).select(
        "user_id", "episode_id", "plays", "listen_seconds",
        F.coalesce("max_completion", F.lit(0.0)).alias("max_completion"),
        F.greatest("likes", F.lit(0)).alias("likes"), "skips",
        F.coalesce("early_skip", F.lit(False)).alias("early_skip"), "locale", "event_date",
    )  # fmt: skip

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield engagement_scores(batch, weights)[SILVER_DAILY_ENGAGEMENT.fieldNames()]

    return joined.mapInPandas(score, SILVER_DAILY_ENGAGEMENT)


def engagement_stats(engagement: DataFrame) -> dict[str, float | int]:
    """Listeners, and the shares of positive rows and early skips: a day's shape at a glance."""
    from pyspark.sql import functions as F

    stats = engagement.agg(
        F.avg((F.col("engagement") > 0).cast("double")).alias("positive"),
        F.avg(F.col("early_skip").cast("double")).alias("early_skips"),
        F.countDistinct("user_id").alias("users"),
    ).first()
    return {
        "users": int(stats["users"] or 0),
        "share_positive": round(float(stats["positive"] or 0.0), 4),
        "share_early_skip": round(float(stats["early_skips"] or 0.0), 4),
    }
