"""Inputs of the rules in podrec/recsys/hybrid.py, built from lake tables, and the two ways to run them.

The daily asset scores inside Spark (``mapInPandas`` over user blocks, the item side
broadcast), so a cluster scales it out; the offline evaluation scores in-process with the very
same ``recommend_block``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from podrec.language import language_of
from podrec.recsys.ab import assign
from podrec.recsys.als import Factors
from podrec.recsys.engagement import COMPLETED_AT
from podrec.recsys.hybrid import OUTPUT_COLUMNS, EpisodeIndex, ItemSide, recommend_block
from podrec.recsys.window import in_window
from podrec.settings import AbSettings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

BLOCK_USERS = 512
POPULAR_USER_PREFIX = "__popular__/"  # lists for listeners without history, one per language


def window_interactions(engagement: DataFrame, end: date, days: int) -> pd.DataFrame:
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
        .toPandas()
    )


def build_episode_index(
    interactions: pd.DataFrame,
    episodes: pd.DataFrame | None = None,
    similarity: pd.DataFrame | None = None,
) -> EpisodeIndex:
    """The item side: every catalog episode plus any episode seen in ``interactions``.

    An imported log's items need no catalog: they become their own canonical episode, in no
    show, with no content neighbours.
    """
    known = episodes if episodes is not None else pd.DataFrame(columns=["episode_id"])
    ids = np.array(sorted(set(known["episode_id"]) | set(interactions["episode_id"])), dtype=object)
    meta = known.set_index("episode_id").reindex(ids)

    def column(name: str, default: pd.Series) -> np.ndarray:
        values = meta[name] if name in meta else pd.Series(index=ids, dtype=object)
        return values.where(values.notna(), default).astype(str).to_numpy(dtype=object)

    as_ids = pd.Series(ids, index=ids)
    index = {e: i for i, e in enumerate(ids)}
    engaged = interactions[interactions["rating"] != 0]
    counts = engaged.groupby("episode_id")["user_id"].nunique()
    positive = interactions[interactions["rating"] > 0].assign(
        language=lambda d: d["locale"].map(language_of)
    )
    popularity = {
        language: _aligned(group.groupby("episode_id")["user_id"].nunique(), index)
        for language, group in positive.groupby("language")
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
    )


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


def user_frame(
    interactions: pd.DataFrame,
    episodes: EpisodeIndex,
    factors: Factors | None,
    policy_of: Callable[[str], str],
    exclude: str = "completed",
    users: list[str] | None = None,
) -> pd.DataFrame:
    """One row per user in the shape ``recommend_block`` takes.

    ``exclude="completed"`` (serving) leaves out what a user finished or rejected; ``"seen"`` (offline
    evaluation, as published protocols do) leaves out everything in their training data.
    """
    lookup = factors.user_lookup() if factors is not None else {}
    data = interactions.assign(item=interactions["episode_id"].map(episodes.index).astype(int))
    # Serving leaves out what they finished or rejected (an early skip sums below zero).
    if exclude == "completed":
        dropped = data["completed"].astype(bool) | (data["rating"] < 0)
    else:
        dropped = pd.Series(True, index=data.index)
    per_user = data.groupby("user_id").agg(
        locale=("locale", "last"), history=("item", list), weights=("rating", list)
    )
    excluded = data[dropped].groupby("user_id")["item"].agg(list) if len(data) else pd.Series(dtype=object)
    ids = users if users is not None else sorted(per_user.index)
    frame = per_user.reindex(ids)
    frame["exclude"] = excluded.reindex(ids)
    for column in ("history", "weights", "exclude"):
        frame[column] = [v if isinstance(v, list) else [] for v in frame[column]]
    frame["locale"] = frame["locale"].astype(object).where(frame["locale"].notna(), None)
    frame["policy"] = [policy_of(u) for u in ids]
    frame["factors"] = [None if (v := lookup.get(u)) is None else v.tolist() for u in ids]
    return frame.rename_axis("user_id").reset_index()[
        ["user_id", "locale", "policy", "factors", "history", "weights", "exclude"]
    ]


def with_popular_lists(users: pd.DataFrame, languages: list[str]) -> pd.DataFrame:
    """``users`` plus one ``__popular__/<language>`` row per language: the lists for listeners
    without history, scored by the same rules (policy ``popular``)."""
    newcomers = pd.DataFrame(
        [
            {"user_id": f"{POPULAR_USER_PREFIX}{lang}", "locale": lang, "policy": "popular", "factors": None,
             "history": [], "weights": [], "exclude": []}
            for lang in languages
        ],
        columns=users.columns,
    )  # fmt: skip
    return pd.concat([users, newcomers], ignore_index=True)


def buckets(user_ids: pd.Series, ab: AbSettings) -> pd.Series:
    """Each listener's sticky A/B bucket; none for the popular lists."""
    return pd.Series(
        [None if u.startswith(POPULAR_USER_PREFIX) else assign(u, ab)[0] for u in user_ids], dtype="Int32"
    )


def recommend_local(users: pd.DataFrame, items: ItemSide, block: int = BLOCK_USERS) -> pd.DataFrame:
    """All users' lists in-process, ``block`` users per matrix product."""
    parts = [recommend_block(users.iloc[s : s + block], items) for s in range(0, len(users), block)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=OUTPUT_COLUMNS)


def recommend_in_spark(spark: SparkSession, users: pd.DataFrame, items: ItemSide) -> DataFrame:
    """All users' lists computed by Spark executors: users are split into partitions of about
    ``BLOCK_USERS``, the item side (factors, similarity, catalog) is broadcast once."""
    from pyspark.sql.types import (
        ArrayType,
        DoubleType,
        FloatType,
        IntegerType,
        StringType,
        StructField,
        StructType,
    )  # fmt: skip

    schema = StructType(
        [
            StructField("user_id", StringType()), StructField("locale", StringType()),
            StructField("policy", StringType()), StructField("factors", ArrayType(FloatType())),
            StructField("history", ArrayType(IntegerType())), StructField("weights", ArrayType(DoubleType())),
            StructField("exclude", ArrayType(IntegerType())),
        ]
    )  # fmt: skip
    out_schema = StructType(
        [
            StructField("user_id", StringType()), StructField("rank", IntegerType()),
            StructField("episode_id", StringType()), StructField("canonical_episode_id", StringType()),
            StructField("score", DoubleType()), StructField("als_score", DoubleType()),
            StructField("content_score", DoubleType()), StructField("policy", StringType()),
            StructField("reason", StringType()),
        ]
    )  # fmt: skip
    shared = spark.sparkContext.broadcast(items)

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for s in range(0, len(batch), BLOCK_USERS):
                yield recommend_block(batch.iloc[s : s + BLOCK_USERS].reset_index(drop=True), shared.value)

    partitions = max(1, len(users) // BLOCK_USERS)
    return spark.createDataFrame(users, schema=schema).repartition(partitions).mapInPandas(score, out_schema)
