"""Spark ML ALS on implicit feedback: the ratings window, the fit, and its factors.

The engagement score is signed (podrec/recsys/engagement.py), which is what Spark's implicit ALS
wants: preference = [rating > 0], confidence = 1 + alpha·|rating|, so an early skip is a
confident "no" rather than a missing value.

At scale the listeners' side never leaves Spark: ids are indexed with a distributed
``zipWithIndex`` (no label list on the driver), and both factor matrices are Spark DataFrames
keyed by the original ids. Only the episodes' side — bounded by the catalog — is brought to the
driver as numpy, for the item side of the lists.

Language variants pool their evidence (``AlsSettings.pool_variants``): the fit sees one item per
canonical episode, its engagement summed over the variants, and every variant is scored with its
canonical episode's factors (``ItemFactors.aligned`` over the catalog's canonical ids). A new
translation of a known episode therefore has factors the day it enters the catalog, and an Italian
listener's play of the Italian variant teaches the model about the English one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np

from podrec.recsys.window import in_window
from podrec.settings import AlsSettings

if TYPE_CHECKING:
    from pyspark.ml.recommendation import ALSModel
    from pyspark.sql import DataFrame, SparkSession


def model_version(als: AlsSettings, day: date) -> str:
    """A model's name: the date it was fitted for and the settings that shaped it."""
    return f"als-{day.isoformat()}-r{als.rank}-i{als.max_iter}-l{als.reg_param:g}-a{als.alpha:g}"


@dataclass
class ItemFactors:
    """The episodes' side of a model, rows aligned with ``ids``."""

    ids: np.ndarray
    factors: np.ndarray

    def aligned(self, ids: np.ndarray) -> np.ndarray:
        """Factors in the order of ``ids``; zeros for episodes the model never saw."""
        out = np.zeros((len(ids), self.factors.shape[1] if self.factors.ndim == 2 else 0), dtype=np.float32)
        position = {e: i for i, e in enumerate(self.ids)}
        for row, episode in enumerate(ids):
            if episode in position:
                out[row] = self.factors[position[episode]]
        return out

    @classmethod
    def collect(cls, factors: DataFrame, id_column: str = "id") -> ItemFactors:
        """From a (``id_column``, factors) DataFrame: one row per catalog episode, so it fits a driver
        (10⁶ episodes x rank 32 ≈ 128 MB)."""
        rows = factors.select(id_column, "factors").collect()
        return cls(
            ids=np.array([r[0] for r in rows], dtype=object),
            factors=np.array([r[1] for r in rows], dtype=np.float32).reshape(len(rows), -1),
        )


@dataclass
class FittedModel:
    """A fitted ALS model with its id mappings; factors as Spark DataFrames keyed by the original ids."""

    model: ALSModel
    users: DataFrame  # user_id, user_idx
    items: DataFrame  # episode_id, item_idx
    # The factor RDDs ALS persists itself (finalStorageLevel); DataFrame.unpersist cannot reach them.
    factor_rdds: tuple[Any, ...] = ()

    def user_factors(self) -> DataFrame:
        """(user_id, factors array<float>)."""
        from pyspark.sql import functions as F

        factors = self.model.userFactors.select(
            F.col("id").alias("user_idx"), F.col("features").alias("factors")
        )
        return self.users.join(factors, "user_idx").select("user_id", "factors")

    def item_factors(self) -> DataFrame:
        """(episode_id, factors array<float>)."""
        from pyspark.sql import functions as F

        factors = self.model.itemFactors.select(
            F.col("id").alias("item_idx"), F.col("features").alias("factors")
        )
        return self.items.join(factors, "item_idx").select("episode_id", "factors")

    def release(self) -> None:
        """Drop what the fit left cached — the id indexes and the factor RDDs ALS persisted — once
        they are written or collected: a process that fits many models (tuning's grid, a long-lived
        session over many days) would otherwise hold every one of them in executor memory."""
        for frame in (self.users, self.items):
            frame.unpersist()
        for rdd in self.factor_rdds:
            rdd.unpersist(False)
        self.factor_rdds = ()

    def save(self, uri: str) -> None:
        """The model and its id mappings under ``uri`` (``als/``, ``users/``, ``items/``)."""
        self.model.write().overwrite().save(f"{uri}/als")
        self.users.write.mode("overwrite").parquet(f"{uri}/users")
        self.items.write.mode("overwrite").parquet(f"{uri}/items")


def window_ratings(engagement: DataFrame, end: date, days: int) -> DataFrame:
    """(user_id, episode_id, rating): engagement summed over the ``days`` ending at ``end``."""
    from pyspark.sql import functions as F

    return (
        engagement.where(in_window("event_date", end, days))
        .groupBy("user_id", "episode_id")
        .agg(F.sum("engagement").alias("rating"))
    )


def pool_variants(ratings: DataFrame, canonical: DataFrame | None) -> DataFrame:
    """(user_id, episode_id, rating) summed per canonical episode: ``episode_id`` then holds the
    canonical id (``canonical``: episode_id, canonical_episode_id; an episode missing there, or every
    episode when it is None, is its own canonical episode)."""
    from pyspark.sql import functions as F

    if canonical is None:
        return ratings
    mapping = canonical.select("episode_id", "canonical_episode_id").distinct()
    return (
        ratings.join(F.broadcast(mapping), "episode_id", "left")
        .withColumn("episode_id", F.coalesce("canonical_episode_id", "episode_id"))
        .groupBy("user_id", "episode_id")
        .agg(F.sum("rating").alias("rating"))
    )


def index_ids(df: DataFrame, column: str, index_column: str) -> DataFrame:
    """Each distinct ``column`` value with a dense 0-based int index, in sorted order, computed by
    the executors (``zipWithIndex``): the ids never gather on the driver."""
    distinct = df.select(column).distinct().orderBy(column)
    indexed = distinct.rdd.zipWithIndex().map(lambda pair: (pair[0][0], int(pair[1])))
    return indexed.toDF(f"{column} string, {index_column} int")


def fit(ratings: DataFrame, als: AlsSettings) -> FittedModel:
    """Index both ids, fit ``ALS(implicitPrefs=True)`` with ``als``; the ratings are cached for the fit."""
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    users = index_ids(ratings, "user_id", "user_idx").persist()
    items = index_ids(ratings, "episode_id", "item_idx").persist()
    indexed = (
        ratings.join(users, "user_id")
        .join(F.broadcast(items), "episode_id")
        .select("user_idx", "item_idx", "rating")
        .persist()
    )
    estimator = ALS(
        rank=als.rank, maxIter=als.max_iter, regParam=als.reg_param, alpha=als.alpha,
        implicitPrefs=True, userCol="user_idx", itemCol="item_idx", ratingCol="rating",
        numUserBlocks=als.blocks, numItemBlocks=als.blocks, seed=als.seed, coldStartStrategy="drop",
    )  # fmt: skip
    before = set(_persistent_rdds(ratings.sparkSession))
    model = estimator.fit(indexed)
    indexed.unpersist()
    # Spark names the two RDDs it keeps for the model; a fit running at the same moment in the same
    # session could be mistaken for this one, which podrec never does (one fit per step).
    after = _persistent_rdds(ratings.sparkSession)
    owned = tuple(rdd for rid, rdd in after.items() if rid not in before and rdd.name() in FACTOR_RDD_NAMES)
    return FittedModel(model=model, users=users, items=items, factor_rdds=owned)


FACTOR_RDD_NAMES = ("userFactors", "itemFactors")


def _persistent_rdds(spark: SparkSession) -> dict[int, Any]:
    """The JVM's persisted RDDs by id (py4j handles)."""
    return dict(spark.sparkContext._jsc.getPersistentRDDs().items())


def factor_rows(fitted: FittedModel, ratings: DataFrame, version: str, day: date) -> DataFrame:
    """``gold.als_factors`` rows for both sides (side, id, factors, interactions, model_version,
    model_date), built by Spark: interactions = (user, episode) pairs of the id in the window."""
    from pyspark.sql import functions as F

    def side(name: str, factors: DataFrame, column: str) -> DataFrame:
        counts = ratings.groupBy(column).agg(F.count("*").alias("interactions"))
        return factors.join(counts, column, "left").select(
            F.lit(name).alias("side"), F.col(column).alias("id"), "factors",
            F.coalesce("interactions", F.lit(0)).cast("long").alias("interactions"),
            F.lit(version).alias("model_version"), F.lit(day).alias("model_date"),
        )  # fmt: skip

    return side("user", fitted.user_factors(), "user_id").unionByName(
        side("item", fitted.item_factors(), "episode_id")
    )
