"""Gold: model-ready features and model outputs."""

import time

import numpy as np
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from dagster_pyspark import LazyPySparkResource
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from podrec.content.embeddings import embed_texts, text_sha256
from podrec.content.similarity import build
from podrec.lake.delta import read_delta
from podrec.lake.schemas import GOLD_EPISODE_EMBEDDINGS, GOLD_EPISODE_SIMILARITY
from podrec_assets.silver import silver_episodes, silver_transcripts
from resources import EmbeddingModelResource, LakeResource


@asset(
    key=["gold", "episode_embeddings"],
    group_name="gold",
    kinds={"python", "delta"},
    owners=["team:podrec"],
    deps=[silver_transcripts],
    description=(
        "One vector per episode and embedding model: the SentenceTransformers embedding of its "
        "whole transcript (long ones in chunks, averaged), with the hash of the text it came from."
    ),
)
def gold_episode_embeddings(
    context: AssetExecutionContext,
    spark: LazyPySparkResource,
    lake: LakeResource,
    embedding_model: EmbeddingModelResource,
) -> MaterializeResult:
    session = spark.spark_session
    uri = lake.table("gold", "episode_embeddings")
    transcripts = {
        r.episode_id: r.text or "" for r in read_delta(session, lake.table("silver", "transcripts")).collect()
    }
    known = {}
    if DeltaTable.isDeltaTable(session, uri):
        rows = read_delta(session, uri).where(F.col("model") == embedding_model.model_name).collect()
        known = {r.episode_id: r.text_sha256 for r in rows}
    hashes = {e: text_sha256(t) for e, t in transcripts.items()}
    todo = sorted(e for e, h in hashes.items() if known.get(e) != h)
    context.log.info(f"episode_embeddings: {len(todo)} new or changed, {len(transcripts) - len(todo)} cached")
    seconds = 0.0
    if todo:
        started = time.perf_counter()
        vectors = embed_texts(
            embedding_model.model(), [transcripts[e] for e in todo], embedding_model.batch_size
        )
        seconds = time.perf_counter() - started
        rows = [
            (e, embedding_model.model_name, hashes[e], v.tolist()) for e, v in zip(todo, vectors, strict=True)
        ]
        updates = session.createDataFrame(rows, schema=GOLD_EPISODE_EMBEDDINGS)
        if DeltaTable.isDeltaTable(session, uri):
            # One commit: an episode's vector for this model is replaced, or added.
            (
                DeltaTable.forPath(session, uri)
                .alias("t")
                .merge(updates.alias("u"), "t.episode_id = u.episode_id AND t.model = u.model")
                .whenMatchedUpdateAll()
                .whenNotMatchedInsertAll()
                .execute()
            )
        else:
            updates.write.format("delta").save(uri)
    return MaterializeResult(
        metadata={
            "embedded": len(todo),
            "cached": len(transcripts) - len(todo),
            "status": "cached" if not todo else "updated",
            "model": embedding_model.model_name,
            "texts_per_second": round(len(todo) / seconds, 1) if seconds else 0.0,
            "path": MetadataValue.path(uri),
        }
    )


class SimilarityConfig(Config):
    """``k`` neighbours per episode; FAISS replaces exact search from ``ann_threshold`` episodes."""

    k: int = 20
    ann_threshold: int = 20_000


@asset(
    key=["gold", "episode_similarity"],
    group_name="gold",
    kinds={"python", "delta"},
    owners=["team:podrec"],
    deps=[gold_episode_embeddings, silver_episodes],
    description=(
        "For each episode, its most similar episodes by transcript content (cosine similarity of "
        "embeddings), ranked; never the episode's own variants, never two variants of one episode."
    ),
)
def gold_episode_similarity(
    context: AssetExecutionContext,
    config: SimilarityConfig,
    spark: LazyPySparkResource,
    lake: LakeResource,
    embedding_model: EmbeddingModelResource,
) -> MaterializeResult:
    session = spark.spark_session
    embeddings = read_delta(session, lake.table("gold", "episode_embeddings")).where(
        F.col("model") == embedding_model.model_name
    )
    catalog = read_delta(session, lake.table("silver", "episodes")).select(
        "episode_id", "canonical_episode_id"
    )
    rows = embeddings.join(catalog, "episode_id").orderBy("episode_id").collect()
    ids = np.array([r.episode_id for r in rows])
    canonical = np.array([r.canonical_episode_id for r in rows])
    vectors = np.array([r.vector for r in rows], dtype=np.float32)
    started = time.perf_counter()
    result = build(vectors, canonical, config.k, config.ann_threshold)
    build_s = time.perf_counter() - started
    out = [
        (str(ids[i]), str(ids[j]), float(result.neighbours.score[i, r]), r + 1)
        for i in range(len(ids))
        for r, j in enumerate(result.neighbours.index[i])
        if j >= 0
    ]
    uri = lake.table("gold", "episode_similarity")
    session.createDataFrame(out, schema=GOLD_EPISODE_SIMILARITY).write.format("delta").mode("overwrite").save(
        uri
    )
    context.log.info(f"episode_similarity: {len(ids)} episodes, {result.method}, {build_s:.2f}s")
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(out),
            "episodes": len(ids),
            "method": result.method,
            f"recall_at_{config.k}": result.recall if result.recall is not None else 1.0,
            "ef_search": result.ef_search or 0,
            "build_seconds": round(build_s, 3),
            "path": MetadataValue.path(uri),
        }
    )
