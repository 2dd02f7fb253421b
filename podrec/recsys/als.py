"""Spark ML ALS on implicit feedback: the ratings window, the fit, and its factors as numpy.

The engagement score is signed (podrec/recsys/engagement.py), which is what Spark's implicit ALS
wants: preference = [rating > 0], confidence = 1 + alpha·|rating|, so an early skip is a
confident "no" rather than a missing value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame


@dataclass(frozen=True)
class AlsParams:
    """Defaults from DESIGN.md: ``ALS(implicitPrefs=True, alpha=40, regParam=0.08)``."""

    rank: int = 32
    max_iter: int = 10
    reg_param: float = 0.08
    alpha: float = 40.0
    blocks: int = 4
    seed: int = 42

    def version(self, day: date) -> str:
        """A model's name: the date it was fitted for and the settings that shaped it."""
        return f"als-{day.isoformat()}-r{self.rank}-i{self.max_iter}-l{self.reg_param:g}-a{self.alpha:g}"


@dataclass
class Factors:
    """Both sides of a fitted model, rows aligned with the id arrays."""

    user_ids: np.ndarray
    user: np.ndarray
    item_ids: np.ndarray
    item: np.ndarray

    def aligned_items(self, ids: np.ndarray) -> np.ndarray:
        """Item factors in the order of ``ids``; zeros for episodes the model never saw."""
        out = np.zeros((len(ids), self.item.shape[1]), dtype=np.float32)
        position = {e: i for i, e in enumerate(self.item_ids)}
        for row, episode in enumerate(ids):
            if episode in position:
                out[row] = self.item[position[episode]]
        return out

    def user_lookup(self) -> dict[str, np.ndarray]:
        return dict(zip(self.user_ids, self.user, strict=True))


def window_ratings(engagement: DataFrame, end: date, days: int) -> DataFrame:
    """(user_id, episode_id, rating): engagement summed over the ``days`` ending at ``end``."""
    from pyspark.sql import functions as F

    start = end - timedelta(days=days - 1)
    return (
        engagement.where(F.col("event_date").between(F.lit(start), F.lit(end)))
        .groupBy("user_id", "episode_id")
        .agg(F.sum("engagement").alias("rating"))
    )


def fit(ratings: DataFrame, params: AlsParams) -> tuple[PipelineModel, Factors]:
    """Index the string ids, fit ALS, and bring both factor matrices back as numpy.

    The pipeline (indexers + ALS) is one model, so saving it saves the id mapping too.
    """
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.recommendation import ALS

    users = StringIndexer(inputCol="user_id", outputCol="user_idx", stringOrderType="alphabetAsc")
    items = StringIndexer(inputCol="episode_id", outputCol="item_idx", stringOrderType="alphabetAsc")
    als = ALS(
        rank=params.rank, maxIter=params.max_iter, regParam=params.reg_param, alpha=params.alpha,
        implicitPrefs=True, userCol="user_idx", itemCol="item_idx", ratingCol="rating",
        numUserBlocks=params.blocks, numItemBlocks=params.blocks, seed=params.seed,
        coldStartStrategy="drop",
    )  # fmt: skip
    model = Pipeline(stages=[users, items, als]).fit(ratings)
    user_labels, item_labels = np.array(model.stages[0].labels), np.array(model.stages[1].labels)
    als_model = model.stages[2]
    return model, Factors(
        user_ids=user_labels,
        user=_dense(als_model.userFactors, len(user_labels), params.rank),
        item_ids=item_labels,
        item=_dense(als_model.itemFactors, len(item_labels), params.rank),
    )


def _dense(factors: DataFrame, n: int, rank: int) -> np.ndarray:
    out = np.zeros((n, rank), dtype=np.float32)
    for row in factors.toLocalIterator():
        out[row["id"]] = row["features"]
    return out
