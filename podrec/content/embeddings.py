"""Transcript embeddings: chunked so a long transcript counts in full, keyed by text hash so
only new or changed text is embedded again."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

CHUNK_WORDS = 180  # all-MiniLM-L6-v2 reads 256 word pieces; ~180 words fit
CHUNK_OVERLAP = 30


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def pending_texts(transcripts: DataFrame, embeddings: DataFrame | None, model: str) -> DataFrame:
    """(episode_id, text, text_sha256) of the transcripts not yet embedded by ``model`` with this very
    text: an episode is embedded once per model and text. Computed in Spark, so only the new or
    changed texts reach the process that embeds them. Spark's ``sha2(…, 256)`` is ``text_sha256``."""
    from pyspark.sql import functions as F

    texts = transcripts.select("episode_id", F.coalesce("text", F.lit("")).alias("text")).withColumn(
        "text_sha256", F.sha2("text", 256)
    )
    if embeddings is None:
        return texts
    known = embeddings.where(F.col("model") == model).select(
        "episode_id", F.col("text_sha256").alias("known")
    )
    return (
        texts.join(known, "episode_id", "left")
        .where(F.col("known").isNull() | (F.col("known") != F.col("text_sha256")))
        .drop("known")
    )


def chunk_words(text: str, size: int = CHUNK_WORDS, overlap: int = CHUNK_OVERLAP) -> list[str]:
    """Overlapping windows of ``size`` words; a short text is one chunk."""
    words = text.split()
    if len(words) <= size:
        return [" ".join(words)]
    step = size - overlap
    return [" ".join(words[i : i + size]) for i in range(0, len(words) - overlap, step)]


def embed_texts(model: Any, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """One unit vector per text: the word-weighted mean of its chunks' embeddings.

    All chunks of all texts go through ``model.encode`` in one call, so batching is as
    efficient as encoding the texts directly.
    """
    chunks: list[str] = []
    owners: list[int] = []
    weights: list[int] = []
    for i, text in enumerate(texts):
        for chunk in chunk_words(text):
            chunks.append(chunk)
            owners.append(i)
            weights.append(max(1, len(chunk.split())))
    vectors = model.encode(chunks, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
    np.add.at(out, np.asarray(owners), vectors * np.asarray(weights, dtype=np.float32)[:, None])
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1, norms)
