"""Top-K similar episodes: exact search for small catalogs, FAISS HNSW above a size.

Vectors are unit length, so cosine similarity is a dot product. A neighbour list never
holds the episode's own canonical episode, nor two variants of one canonical episode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK = 2048  # rows of the similarity matrix computed at once: bounded memory at any size


@dataclass(frozen=True)
class Neighbours:
    index: np.ndarray  # (n, k) row numbers of the neighbours, -1 where fewer than k exist
    score: np.ndarray  # (n, k) similarities


def _pick(candidates: np.ndarray, scores: np.ndarray, canonical: np.ndarray, own: int, k: int):
    """The best ``k`` candidates (sorted by score) with distinct canonical ids other than ``own``'s."""
    order = np.argsort(-scores, kind="stable")
    seen = {canonical[own]}
    picked, picked_scores = [], []
    for j in order:
        if candidates[j] < 0:
            continue
        c = canonical[candidates[j]]
        if c in seen:
            continue
        seen.add(c)
        picked.append(candidates[j])
        picked_scores.append(scores[j])
        if len(picked) == k:
            break
    return picked, picked_scores


def _collect(n: int, k: int, rows) -> Neighbours:
    index = np.full((n, k), -1, dtype=np.int64)
    score = np.zeros((n, k), dtype=np.float32)
    for i, (picked, picked_scores) in rows:
        index[i, : len(picked)] = picked
        score[i, : len(picked)] = picked_scores
    return Neighbours(index, score)


def exact_top_k(
    vectors: np.ndarray, canonical: np.ndarray, k: int, rows: np.ndarray | None = None
) -> Neighbours:
    """Brute force, blocked: exact, O(n²·d); ``rows`` limits it to some queries (for recall)."""
    queries = np.arange(len(vectors)) if rows is None else rows
    # Room for skipped variants: a few extra candidates, widened if a row runs short.
    extra = min(len(vectors), k * 4 + 1)
    results = []
    for start in range(0, len(queries), BLOCK):
        block = queries[start : start + BLOCK]
        sims = vectors[block] @ vectors.T
        top = np.argpartition(-sims, extra - 1, axis=1)[:, :extra] if extra < len(vectors) else None
        for r, i in enumerate(block):
            cand = top[r] if top is not None else np.arange(len(vectors))
            picked, s = _pick(cand, sims[r, cand], canonical, i, k)
            if len(picked) < k and top is not None:  # many variants among the best: search the row
                cand = np.arange(len(vectors))
                picked, s = _pick(cand, sims[r], canonical, i, k)
            results.append((r + start, (picked, s)))
    return _collect(len(queries), k, results)


def hnsw_index(vectors: np.ndarray, m: int = 32, ef_construction: int = 80):
    """A FAISS HNSW graph over the vectors, on inner product."""
    import faiss

    index = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def ann_top_k(index, vectors: np.ndarray, canonical: np.ndarray, k: int, ef_search: int = 128) -> Neighbours:
    """Approximate top-K from an HNSW graph; ``ef_search`` trades time for recall."""
    index.hnsw.efSearch = max(ef_search, k * 4)
    scores, cand = index.search(np.ascontiguousarray(vectors, dtype=np.float32), k * 4 + 1)
    return _collect(
        len(vectors), k, ((i, _pick(cand[i], scores[i], canonical, i, k)) for i in range(len(vectors)))
    )


def neighbour_recall(approx: Neighbours, exact: Neighbours, rows: np.ndarray) -> float:
    """Share of the exact top-K that the approximate search found, over the sampled ``rows``."""
    hits = total = 0
    for r, i in enumerate(rows):
        truth = {j for j in exact.index[r] if j >= 0}
        hits += len(truth & {j for j in approx.index[i] if j >= 0})
        total += len(truth)
    return hits / total if total else 1.0


@dataclass(frozen=True)
class SimilarityBuild:
    neighbours: Neighbours
    method: str  # exact | faiss-hnsw
    recall: float | None  # ANN recall@K against exact on a sample; None for exact
    ef_search: int | None = None


def build(
    vectors: np.ndarray,
    canonical: np.ndarray,
    k: int,
    ann_threshold: int,
    min_recall: float = 0.9,
    recall_sample: int = 500,
    seed: int = 0,
) -> SimilarityBuild:
    """Exact below ``ann_threshold`` episodes; FAISS above it, searching wider (efSearch doubled,
    up to 1024) until the recall measured against exact search on a sample reaches ``min_recall``."""
    if len(vectors) < ann_threshold:
        return SimilarityBuild(exact_top_k(vectors, canonical, k), "exact", None)
    rows = np.random.default_rng(seed).choice(
        len(vectors), size=min(recall_sample, len(vectors)), replace=False
    )
    truth = exact_top_k(vectors, canonical, k, rows=rows)
    index = hnsw_index(vectors)
    ef = 128
    while True:
        approx = ann_top_k(index, vectors, canonical, k, ef)
        recall = neighbour_recall(approx, truth, rows)
        if recall >= min_recall or ef >= 1024:
            return SimilarityBuild(approx, "faiss-hnsw", recall, ef)
        ef *= 2


def neighbour_rows(ids: np.ndarray, neighbours: Neighbours) -> list[tuple[str, str, float, int]]:
    """``gold.episode_similarity`` rows: (episode, neighbour, similarity, rank from 1)."""
    return [
        (str(ids[i]), str(ids[j]), float(neighbours.score[i, r]), r + 1)
        for i in range(len(ids))
        for r, j in enumerate(neighbours.index[i])
        if j >= 0
    ]
