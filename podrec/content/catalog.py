"""The current episode catalog (``silver.episodes``): each episode's newest snapshot, the day it was
first seen, and its ``canonical_episode_id`` (the rule is in podrec/content/canonical.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from podrec.content.canonical import EpisodeKey, canonical_ids

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

KEY_COLUMNS = ("episode_id", "feed_id", "language", "episode_number", "season", "published_at", "duration_s")


@dataclass(frozen=True)
class CatalogBuild:
    frame: DataFrame  # silver.episodes: bronze columns + first_seen_date + canonical_episode_id
    keys: dict[str, EpisodeKey]
    canonical: dict[str, str]  # episode_id → canonical_episode_id
    cached: DataFrame  # the newest snapshots, read twice (keys, then the write); release() drops them

    def release(self) -> None:
        """Drop the cached snapshots once ``frame`` is written: a long-lived session builds one a day."""
        self.cached.unpersist()

    def variant_groups(self) -> dict[str, list[str]]:
        """canonical id → its episodes, for the groups with more than one language variant."""
        groups: dict[str, list[str]] = {}
        for episode_id, canonical in self.canonical.items():
            groups.setdefault(canonical, []).append(episode_id)
        return {c: sorted(m) for c, m in groups.items() if len(m) > 1}


def build_catalog(bronze: DataFrame) -> CatalogBuild:
    """The catalog from every bronze snapshot. The variant rule looks at all episodes at once, so
    their keys (seven small fields per episode) come to the driver: 10⁶ episodes ≈ 200 MB."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from podrec.lake.schemas import CANONICAL_IDS

    spark = bronze.sparkSession
    latest = Window.partitionBy("episode_id").orderBy(F.desc("ingest_date"))
    current = (
        bronze.withColumn("first_seen_date", F.min("ingest_date").over(Window.partitionBy("episode_id")))
        .withColumn("_rank", F.row_number().over(latest))
        .where("_rank = 1")
        .drop("_rank")
    ).persist()
    keys = {r.episode_id: EpisodeKey(*r) for r in current.select(*KEY_COLUMNS).toLocalIterator()}
    ids = canonical_ids(keys.values())
    mapping = spark.createDataFrame(sorted(ids.items()), schema=CANONICAL_IDS)
    return CatalogBuild(frame=current.join(mapping, "episode_id"), keys=keys, canonical=ids, cached=current)
