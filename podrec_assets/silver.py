"""Silver: cleaned, conformed tables built from bronze."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import Window
from pyspark.sql import functions as F

from podrec.canonical import EpisodeKey, canonical_ids
from podrec.lake import read_delta
from podrec.spark_schemas import CANONICAL_IDS
from podrec_assets.bronze import bronze_episodes
from resources import LakeResource


@asset(
    key=["silver", "episodes"],
    group_name="silver",
    kinds={"spark", "delta"},
    owners=["team:podrec"],
    deps=[bronze_episodes],
    description=(
        "The current episode catalog: each episode's latest bronze snapshot, the day it was first "
        "seen, and its canonical_episode_id — shared by the language variants of one episode "
        "(same show and content, another language and feed; the rule is in podrec/canonical.py)."
    ),
)
def silver_episodes(
    context: AssetExecutionContext, spark: LazyPySparkResource, lake: LakeResource
) -> MaterializeResult:
    session = spark.spark_session
    bronze = read_delta(session, lake.table("bronze", "episodes"))
    latest = Window.partitionBy("episode_id").orderBy(F.desc("ingest_date"))
    catalog = (
        bronze.withColumn("first_seen_date", F.min("ingest_date").over(Window.partitionBy("episode_id")))
        .withColumn("_rank", F.row_number().over(latest))
        .where("_rank = 1")
        .drop("_rank")
    ).persist()
    keys = [
        EpisodeKey(
            r.episode_id, r.feed_id, r.language, r.episode_number, r.season, r.published_at, r.duration_s
        )
        for r in catalog.select(
            "episode_id", "feed_id", "language", "episode_number", "season", "published_at", "duration_s"
        ).toLocalIterator()
    ]
    ids = canonical_ids(keys)
    mapping = session.createDataFrame(sorted(ids.items()), schema=CANONICAL_IDS)
    silver = catalog.join(mapping, "episode_id")
    uri = lake.table("silver", "episodes")
    # One overwrite commit: readers see the old catalog or the new one, never a mix.
    silver.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(uri)
    catalog.unpersist()

    groups: dict[str, list[str]] = {}
    for episode_id, canonical in ids.items():
        groups.setdefault(canonical, []).append(episode_id)
    variants = {c: sorted(m) for c, m in groups.items() if len(m) > 1}
    titles = {k.episode_id: k for k in keys}
    preview = "\n".join(
        f"| {c} | {', '.join(f'{m} ({titles[m].language})' for m in members)} |"
        for c, members in sorted(variants.items())[:8]
    )
    context.log.info(f"silver.episodes: {len(keys)} episodes, {len(variants)} with language variants")
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(keys),
            "canonical_episodes": len(groups),
            "episodes_with_variants": len(variants),
            "variant_groups": MetadataValue.md("| canonical | variants |\n|---|---|\n" + preview),
            "path": MetadataValue.path(uri),
        }
    )
