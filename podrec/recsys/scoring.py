"""Inputs of the rules in podrec/recsys/hybrid.py, built from lake tables, and the two ways to run them.

Everything that grows with listeners stays in Spark: the window's interactions, each listener's
history, exclusions, factors and A/B arm are one Spark DataFrame (``user_frame``), scored by the
executors (``recommend_in_spark``: ``mapInPandas`` over user blocks, the item side broadcast).
What grows with the catalog only — the item side (``EpisodeIndex``: ids, variants, shows,
similarity, per-episode listener counts) — is gathered on the driver, bounded by the catalog. The
offline evaluation scores its (bounded) users in-process with the very same ``recommend_block``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from podrec.ids import POPULAR_USER_PREFIX
from podrec.language import language_sql
from podrec.recsys.ab import bucket_column
from podrec.recsys.engagement import COMPLETED_AT
from podrec.recsys.hybrid import OUTPUT_COLUMNS, EpisodeIndex, ItemSide, recommend_block
from podrec.recsys.window import in_window
from podrec.settings import AbSettings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

BLOCK_USERS = 512


def window_interactions(engagement: DataFrame, end: date, days: int) -> DataFrame:
    """Per (user, episode) over the window: summed engagement (``rating``), whether it was
    ever completed, and the user's latest locale."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    latest_locale = F.last("locale", ignorenulls=True).over(
        Window.partitionBy("user_id")
        .orderBy("event_date")
        .rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    )
    return (
        engagement.where(in_window("event_date", end, days))
        .withColumn("user_locale", latest_locale)
        .groupBy("user_id", "episode_id")
        .agg(
            F.sum("engagement").alias("rating"),
            (F.max("max_completion") >= COMPLETED_AT).alias("completed"),
            F.first("user_locale").alias("locale"),
        )
    )


def episode_stats(interactions: DataFrame) -> pd.DataFrame:
    """Per episode and listener language: listeners who engaged at all (``engaged``, drives the
    cold-start λ) and who engaged positively (``positive``, popularity). One row per (episode,
    language): bounded by the catalog, whatever the number of listeners."""
    from pyspark.sql import functions as F

    return (
        interactions.withColumn("language", F.expr(language_sql("locale")))
        .groupBy("episode_id", "language")
        .agg(
            F.count(F.when(F.col("rating") != 0, True)).alias("engaged"),
            F.count(F.when(F.col("rating") > 0, True)).alias("positive"),
        )
        .toPandas()
    )


def build_episode_index(
    stats: pd.DataFrame,
    episodes: pd.DataFrame | None = None,
    similarity: pd.DataFrame | None = None,
) -> EpisodeIndex:
    """The item side: every catalog episode plus any episode with interactions (``episode_stats``).

    An imported log's items need no catalog: they become their own canonical episode, in no
    show, with no content neighbours. ``published_at`` (when the catalog has it) orders each show's
    episodes for the followed-show source.
    """
    known = episodes if episodes is not None else pd.DataFrame(columns=["episode_id"])
    ids = np.array(sorted(set(known["episode_id"]) | set(stats["episode_id"])), dtype=object)
    meta = known.set_index("episode_id").reindex(ids)

    def column(name: str, default: pd.Series) -> np.ndarray:
        values = meta[name] if name in meta else pd.Series(index=ids, dtype=object)
        return values.where(values.notna(), default).astype(str).to_numpy(dtype=object)

    as_ids = pd.Series(ids, index=ids)
    index = {e: i for i, e in enumerate(ids)}
    counts = stats.groupby("episode_id")["engaged"].sum()
    popularity = {
        language: _aligned(group.set_index("episode_id")["positive"], index)
        for language, group in stats[stats["positive"] > 0].groupby("language")
    }
    return EpisodeIndex(
        ids=ids,
        canonical_ids=column("canonical_episode_id", as_ids),
        show=column("feed_id", pd.Series("", index=ids)),
        language=column("language", pd.Series("und", index=ids)),
        title=column("title", as_ids),
        similarity=_similarity_matrix(similarity, index),
        interactions=_aligned(counts, index),
        popularity=popularity,
        published=_epoch_seconds(meta["published_at"]) if "published_at" in meta else None,
    )


def _epoch_seconds(values: pd.Series) -> np.ndarray:
    """Timestamps as float epoch seconds, NaN where unknown (a comparable order for each show)."""
    stamps = pd.to_datetime(values, utc=True, errors="coerce")
    seconds = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return seconds.to_numpy(dtype=float, na_value=np.nan)


def _aligned(values: pd.Series, index: dict[str, int]) -> np.ndarray:
    out = np.zeros(len(index), dtype=float)
    for episode, value in values.items():
        out[index[episode]] = value
    return out


def _similarity_matrix(similarity: pd.DataFrame | None, index: dict[str, int]) -> sp.csr_matrix:
    n = len(index)
    if similarity is None or similarity.empty:
        return sp.csr_matrix((n, n), dtype=np.float32)
    known = similarity[similarity["episode_id"].isin(index) & similarity["neighbor_episode_id"].isin(index)]
    rows = known["episode_id"].map(index).to_numpy()
    cols = known["neighbor_episode_id"].map(index).to_numpy()
    return sp.csr_matrix((known["similarity"].to_numpy(np.float32), (rows, cols)), shape=(n, n))


USER_FRAME = (
    "user_id string, locale string, policy string, bucket int, factors array<float>, history array<int>, "
    "weights array<double>, exclude array<int>"
)


def user_frame(
    interactions: DataFrame,
    index: EpisodeIndex,
    user_factors: DataFrame | None,
    ab: AbSettings,
    exclude: str = "completed",
) -> DataFrame:
    """One row per listener in the shape ``recommend_block`` takes (``USER_FRAME``), built by Spark.

    ``interactions``: (user_id, episode_id, rating, completed, locale). ``exclude="completed"``
    (serving) leaves out what a listener finished or rejected (an early skip sums below zero);
    ``"seen"`` (offline evaluation, as published protocols do) everything in their training data.
    Each listener's sticky bucket and arm come from ``ab`` (``podrec.recsys.ab``'s hash, in SQL).
    """
    from pyspark.sql import functions as F

    spark = interactions.sparkSession
    positions = spark.createDataFrame(
        [(str(e), i) for i, e in enumerate(index.ids)], "episode_id string, item int"
    )  # fmt: skip
    dropped = (F.col("completed") | (F.col("rating") < 0)) if exclude == "completed" else F.lit(True)
    rows = interactions.join(F.broadcast(positions), "episode_id").withColumn("dropped", dropped)
    per_user = rows.groupBy("user_id").agg(
        F.first("locale", ignorenulls=True).alias("locale"),
        F.sort_array(F.collect_list(F.struct("item", "rating", "dropped"))).alias("rows"),
    )
    frame = per_user.select(
        "user_id",
        "locale",
        F.col("rows.item").alias("history"),
        F.col("rows.rating").alias("weights"),
        F.transform(F.filter("rows", lambda r: r["dropped"]), lambda r: r["item"]).alias("exclude"),
        bucket_column("user_id", ab.experiment_id).alias("bucket"),
    ).withColumn("policy", F.when(F.col("bucket") < ab.hybrid_buckets, "hybrid").otherwise("als_only"))
    if user_factors is None:
        frame = frame.withColumn("factors", F.lit(None).cast("array<float>"))
    else:
        frame = frame.join(
            user_factors.select("user_id", F.col("factors").cast("array<float>")), "user_id", "left"
        )
    return frame.select(*[c.split()[0] for c in USER_FRAME.split(", ")])


def with_popular_lists(users: DataFrame, languages: list[str]) -> DataFrame:
    """``users`` plus one ``__popular__/<language>`` row per language: the lists for listeners
    without history, scored by the same rules (policy ``popular``, no bucket)."""
    spark = users.sparkSession
    newcomers = spark.createDataFrame(
        [(f"{POPULAR_USER_PREFIX}{lang}", lang, "popular", None, None, [], [], []) for lang in languages],
        USER_FRAME,
    )
    return users.unionByName(newcomers)


def recommend_local(users: pd.DataFrame, items: ItemSide, block: int = BLOCK_USERS) -> pd.DataFrame:
    """All users' lists in-process, ``block`` users per matrix product."""
    parts = [recommend_block(users.iloc[s : s + block], items) for s in range(0, len(users), block)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=OUTPUT_COLUMNS)


LIST_ROWS = (
    "user_id string, rank int, episode_id string, canonical_episode_id string, score double, "
    "als_score double, content_score double, policy string, reason string, locale string, bucket int"
)


def recommend_in_spark(users: DataFrame, items: ItemSide) -> DataFrame:
    """Every listener's list, computed by the executors: the item side (factors, similarity,
    catalog) is broadcast once and each partition scores its users ``BLOCK_USERS`` at a time.
    Rows are ``LIST_ROWS``: the list, plus the listener's locale and bucket."""
    spark = users.sparkSession
    shared = spark.sparkContext.broadcast(items)

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for s in range(0, len(batch), BLOCK_USERS):
                block = batch.iloc[s : s + BLOCK_USERS].reset_index(drop=True)
                lists = recommend_block(block, shared.value)
                who = block[["user_id", "locale"]].assign(bucket=block["bucket"].astype("Int32"))
                yield lists.merge(who, on="user_id", how="left")

    partitions = max(1, spark.sparkContext.defaultParallelism * 2)
    return users.repartition(partitions).mapInPandas(score, LIST_ROWS)
