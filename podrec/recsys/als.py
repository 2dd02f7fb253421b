"""Spark ML ALS on implicit feedback: the ratings window, the fit, and its factors as numpy.

The engagement score is signed (podrec/recsys/engagement.py), which is what Spark's implicit ALS
wants: preference = [rating > 0], confidence = 1 + alpha·|rating|, so an early skip is a
confident "no" rather than a missing value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np

from podrec.recsys.window import in_window
from podrec.settings import AlsSettings

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame


def model_version(als: AlsSettings, day: date) -> str:
    """A model's name: the date it was fitted for and the settings that shaped it."""
    return f"als-{day.isoformat()}-r{als.rank}-i{als.max_iter}-l{als.reg_param:g}-a{als.alpha:g}"


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

    def table_rows(
        self, user_counts: dict[str, int], item_counts: dict[str, int], version: str, day: date
    ) -> list[tuple]:
        """``gold.als_factors`` rows: (side, id, factors, interactions, model_version, model_date)."""
        rows = [
            ("user", u, v.tolist(), user_counts.get(u, 0), version, day)
            for u, v in zip(self.user_ids, self.user, strict=True)
        ]
        return rows + [
            ("item", e, v.tolist(), item_counts.get(e, 0), version, day)
            for e, v in zip(self.item_ids, self.item, strict=True)
        ]

    @classmethod
    def from_table_rows(cls, rows: list[Any]) -> Factors:
        """Both sides back from ``gold.als_factors`` rows of one model."""
        users = (
            [r["id"] for r in rows if r["side"] == "user"],
            [r["factors"] for r in rows if r["side"] == "user"],
        )
        items = (
            [r["id"] for r in rows if r["side"] == "item"],
            [r["factors"] for r in rows if r["side"] == "item"],
        )
        return cls(
            user_ids=np.array(users[0], dtype=object), user=np.array(users[1], dtype=np.float32),
            item_ids=np.array(items[0], dtype=object), item=np.array(items[1], dtype=np.float32),
        )  # fmt: skip


def window_ratings(engagement: DataFrame, end: date, days: int) -> DataFrame:
    """(user_id, episode_id, rating): engagement summed over the ``days`` ending at ``end``."""
    from pyspark.sql import functions as F

    return (
        engagement.where(in_window("event_date", end, days))
        .groupBy("user_id", "episode_id")
        .agg(F.sum("engagement").alias("rating"))
    )


def fit(ratings: DataFrame, als: AlsSettings) -> tuple[PipelineModel, Factors]:
    """Index the string ids, fit ALS, and bring both factor matrices back as numpy.

    The pipeline (indexers + ALS) is one model, so saving it saves the id mapping too.
    """
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.recommendation import ALS

    users = StringIndexer(inputCol="user_id", outputCol="user_idx", stringOrderType="alphabetAsc")
    items = StringIndexer(inputCol="episode_id", outputCol="item_idx", stringOrderType="alphabetAsc")
    estimator = ALS(
        rank=als.rank, maxIter=als.max_iter, regParam=als.reg_param, alpha=als.alpha,
        implicitPrefs=True, userCol="user_idx", itemCol="item_idx", ratingCol="rating",
        numUserBlocks=als.blocks, numItemBlocks=als.blocks, seed=als.seed,
        coldStartStrategy="drop",
    )  # fmt: skip
    model = Pipeline(stages=[users, items, estimator]).fit(ratings)
    user_labels, item_labels = np.array(model.stages[0].labels), np.array(model.stages[1].labels)
    als_model = model.stages[2]
    return model, Factors(
        user_ids=user_labels,
        user=_dense(als_model.userFactors, len(user_labels), als.rank),
        item_ids=item_labels,
        item=_dense(als_model.itemFactors, len(item_labels), als.rank),
    )


def _dense(factors: DataFrame, n: int, rank: int) -> np.ndarray:
    out = np.zeros((n, rank), dtype=np.float32)
    for row in factors.toLocalIterator():
        out[row["id"]] = row["features"]
    return out


def interaction_counts(ratings: DataFrame, column: str) -> dict[str, int]:
    """How many (user, episode) pairs each id of ``column`` has in the window."""
    from pyspark.sql import functions as F

    return {r[column]: r["n"] for r in ratings.groupBy(column).agg(F.count("*").alias("n")).collect()}
