"""Gold, content track: what episodes are about — transcript embeddings and episode similarity.

The track reacts to new episodes: ``sensors/new_episodes.py`` requests the ``content`` job when
bronze lands episodes that have no transcript yet, and every step skips the work already done.
"""

import time

import numpy as np
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    AssetSelection,
    Config,
    Definitions,
    MaterializeResult,
    MetadataValue,
    asset,
    define_asset_job,
)
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import functions as F

from podrec.content.embeddings import embed_texts, pending_texts
from podrec.content.similarity import build, neighbour_rows
from podrec.lake.delta import exists, overwrite, read, upsert
from podrec.lake.schemas import GOLD_EPISODE_EMBEDDINGS, GOLD_EPISODE_SIMILARITY
from podrec_assets.metadata import delta_write_metadata
from resources import EmbeddingModelResource, LakeResource

CONTENT_ASSETS = (["silver", "transcripts"], ["gold", "episode_embeddings"], ["gold", "episode_similarity"])


def episode_embeddings() -> AssetsDefinition:
    @asset(
        key=["gold", "episode_embeddings"],
        group_name="gold",
        kinds={"python", "delta"},
        owners=["team:podrec"],
        deps=[["silver", "transcripts"]],
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
        transcripts = read(session, lake.table("silver", "transcripts"))
        embedded = read(session, uri) if exists(session, uri) else None
        # Only new or changed texts come to this process (the day's episodes, not the catalog).
        todo = (
            pending_texts(transcripts, embedded, embedding_model.model_name).orderBy("episode_id").collect()
        )
        cached = transcripts.count() - len(todo)
        context.log.info(f"episode_embeddings: {len(todo)} new or changed, {cached} cached")
        if not todo:
            return MaterializeResult(
                metadata={
                    "embedded": 0,
                    "cached": cached,
                    "status": "cached",
                    "model": embedding_model.model_name,
                    "texts_per_second": 0.0,
                    "path": MetadataValue.path(uri),
                }
            )
        started = time.perf_counter()
        vectors = embed_texts(embedding_model.model(), [r.text for r in todo], embedding_model.batch_size)
        seconds = time.perf_counter() - started
        rows = [
            (r.episode_id, embedding_model.model_name, r.text_sha256, v.tolist())
            for r, v in zip(todo, vectors, strict=True)
        ]
        # One commit: an episode's vector for this model is replaced, or added.
        result = upsert(
            session.createDataFrame(rows, schema=GOLD_EPISODE_EMBEDDINGS), uri, ["episode_id", "model"]
        )
        return MaterializeResult(
            metadata={
                **delta_write_metadata(result),
                "embedded": len(todo),
                "cached": cached,
                "status": "updated",
                "model": embedding_model.model_name,
                "texts_per_second": round(len(todo) / seconds, 1) if seconds else 0.0,
            }
        )

    return gold_episode_embeddings


class SimilarityConfig(Config):
    """``k`` neighbours per episode; FAISS replaces exact search from ``ann_threshold`` episodes."""

    k: int = 20
    ann_threshold: int = 20_000


def episode_similarity() -> AssetsDefinition:
    @asset(
        key=["gold", "episode_similarity"],
        group_name="gold",
        kinds={"python", "delta"},
        owners=["team:podrec"],
        deps=[["gold", "episode_embeddings"], ["silver", "episodes"]],
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
        embeddings = read(session, lake.table("gold", "episode_embeddings")).where(
            F.col("model") == embedding_model.model_name
        )
        catalog = read(session, lake.table("silver", "episodes")).select("episode_id", "canonical_episode_id")
        # Every vector of the model (10⁶ episodes x 384 floats ≈ 1.5 GB): the index is built in one process.
        rows = embeddings.join(catalog, "episode_id").orderBy("episode_id").collect()
        ids = np.array([r.episode_id for r in rows])
        canonical = np.array([r.canonical_episode_id for r in rows])
        vectors = np.array([r.vector for r in rows], dtype=np.float32)
        started = time.perf_counter()
        built = build(vectors, canonical, config.k, config.ann_threshold)
        build_s = time.perf_counter() - started
        result = overwrite(
            session.createDataFrame(neighbour_rows(ids, built.neighbours), schema=GOLD_EPISODE_SIMILARITY),
            lake.table("gold", "episode_similarity"),
        )
        context.log.info(f"episode_similarity: {len(ids)} episodes, {built.method}, {build_s:.2f}s")
        return MaterializeResult(
            metadata={
                **delta_write_metadata(result),
                "episodes": len(ids),
                "method": built.method,
                f"recall_at_{config.k}": built.recall if built.recall is not None else 1.0,
                "ef_search": built.ef_search or 0,
                "build_seconds": round(build_s, 3),
            }
        )

    return gold_episode_similarity


def definitions() -> Definitions:
    return Definitions(
        assets=[episode_embeddings(), episode_similarity()],
        jobs=[
            define_asset_job(
                "content",
                selection=AssetSelection.assets(*CONTENT_ASSETS),
                description=(
                    "Transcribe what is new, embed what changed, rebuild episode similarity. "
                    "Requested by new_episodes_sensor when bronze lands episodes without a transcript."
                ),
            )
        ],
    )
