"""Ranking metrics at K, one list at a time, so each is checkable by hand on a tiny case.

Conventions follow the common offline-evaluation tables (e.g. Microsoft Recommenders):
binary relevance; NDCG's ideal list puts min(|relevant|, K) hits first; MAP divides by
min(|relevant|, K); hit rate is 1 when any of the K is relevant.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np


def precision_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    return sum(1 for item in recommended[:k] if item in relevant) / k


def recall_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    if not relevant:
        return 0.0
    return sum(1 for item in recommended[:k] if item in relevant) / len(relevant)


def ndcg_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, item in enumerate(recommended[:k]) if item in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


def average_precision_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    hits, total = 0, 0.0
    for i, item in enumerate(recommended[:k]):
        if item in relevant:
            hits += 1
            total += hits / (i + 1)
    return total / min(len(relevant), k) if relevant else 0.0


def hit_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    return float(any(item in relevant for item in recommended[:k]))


def catalog_coverage(lists: Iterable[Sequence[str]], catalog_size: int) -> float:
    """Share of the catalog that appears in at least one list."""
    shown = set()
    for items in lists:
        shown.update(items)
    return len(shown) / catalog_size if catalog_size else 0.0


def novelty(lists: Iterable[Sequence[str]], listeners: Mapping[str, int], n_users: int) -> float:
    """Mean self-information -log2(share of users who engaged) of recommended items: higher means
    less obvious picks. An item nobody engaged with counts as engaged by one user."""
    values = [-math.log2(max(listeners.get(item, 0), 1) / n_users) for items in lists for item in items]
    return float(np.mean(values)) if values else 0.0


def intra_list_diversity(items: Sequence[str], vectors: Mapping[str, np.ndarray]) -> float | None:
    """Mean pairwise cosine distance (1 - cosine) within one list; None under two known items."""
    known = [vectors[i] for i in items if i in vectors]
    if len(known) < 2:
        return None
    m = np.asarray(known, dtype=float)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    m = m / np.where(norms > 0, norms, 1.0)
    sims = m @ m.T
    n = len(known)
    return float(1.0 - (sims.sum() - np.trace(sims)) / (n * (n - 1)))
