"""Ranking metrics on cases small enough to work out by hand."""

import math

import numpy as np
import pytest

from podrec.recsys import metrics

RECS = ["a", "b", "c", "d"]
RELEVANT = {"b", "d", "z"}


def test_precision_recall_hit() -> None:
    assert metrics.precision_at_k(RECS, RELEVANT, 4) == 2 / 4
    assert metrics.recall_at_k(RECS, RELEVANT, 4) == 2 / 3
    assert metrics.hit_at_k(RECS, RELEVANT, 1) == 0.0
    assert metrics.hit_at_k(RECS, RELEVANT, 2) == 1.0


def test_ndcg() -> None:
    dcg = 1 / math.log2(3) + 1 / math.log2(5)  # hits at ranks 2 and 4
    ideal = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)  # three relevant, all first
    assert metrics.ndcg_at_k(RECS, RELEVANT, 4) == pytest.approx(dcg / ideal)
    assert metrics.ndcg_at_k(["b", "d"], {"b", "d"}, 10) == pytest.approx(1.0)
    assert metrics.ndcg_at_k(RECS, set(), 4) == 0.0


def test_map() -> None:
    # precision at each hit: 1/2 (rank 2), 2/4 (rank 4); divided by min(3 relevant, K=4) = 3
    assert metrics.average_precision_at_k(RECS, RELEVANT, 4) == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert metrics.average_precision_at_k(["b"], {"b"}, 10) == 1.0


def test_coverage_and_novelty() -> None:
    assert metrics.catalog_coverage([["a", "b"], ["b", "c"]], 6) == 0.5
    # a: 4 of 8 users → 1 bit; b: 1 of 8 → 3 bits; unknown item counts as 1 user → 3 bits
    assert metrics.novelty([["a", "b"], ["x"]], {"a": 4, "b": 1}, 8) == pytest.approx((1 + 3 + 3) / 3)


def test_intra_list_diversity() -> None:
    vectors = {"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0]), "c": np.array([1.0, 0.0])}
    assert metrics.intra_list_diversity(["a", "b"], vectors) == pytest.approx(1.0)  # orthogonal
    assert metrics.intra_list_diversity(["a", "c"], vectors) == pytest.approx(0.0)  # identical
    # pairs: a-b 1, a-c 0, b-c 1 → mean 2/3
    assert metrics.intra_list_diversity(["a", "b", "c"], vectors) == pytest.approx(2 / 3)
    assert metrics.intra_list_diversity(["a", "unknown"], vectors) is None
