import numpy as np

from podrec.content.similarity import build, exact_top_k, neighbour_recall


def unit(rows: list[list[float]]) -> np.ndarray:
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_exact_neighbours_by_hand() -> None:
    vectors = unit([[1, 0], [0.9, 0.1], [0, 1], [0.5, 0.5]])
    canonical = np.array(["a", "b", "c", "d"])
    n = exact_top_k(vectors, canonical, k=2)
    assert n.index.tolist() == [[1, 3], [0, 3], [3, 1], [1, 0]]
    expected = float(vectors[0] @ vectors[1])
    assert abs(n.score[0, 0] - expected) < 1e-6


def test_variants_are_never_neighbours_nor_listed_twice() -> None:
    # 0 and 1 are variants of one episode (canonical "x"); 2 and 3 variants of "y".
    vectors = unit([[1, 0, 0], [1, 0.01, 0], [0.9, 0.2, 0], [0.9, 0.21, 0], [0, 0, 1]])
    canonical = np.array(["x", "x", "y", "y", "z"])
    n = exact_top_k(vectors, canonical, k=2)
    assert n.index[0].tolist() == [2, 4]  # not 1 (own variant), and only one of 2/3
    # For 2 the best of x's variants is 1 (its small y component leans towards 2), and only it.
    assert n.index[2].tolist() == [1, 4]
    # 4 is orthogonal to everything (all ties), yet still gets one variant per episode at most.
    assert sorted(canonical[n.index[4]]) == ["x", "y"]


def test_fewer_candidates_than_k_leaves_gaps() -> None:
    vectors = unit([[1, 0], [0, 1]])
    n = exact_top_k(vectors, np.array(["a", "a"]), k=3)
    assert n.index.tolist() == [[-1, -1, -1], [-1, -1, -1]]


def test_ann_path_reports_high_recall_on_clustered_data() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 32))
    vectors = centres[rng.integers(0, 40, 3000)] + 0.3 * rng.normal(size=(3000, 32))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    canonical = np.array([f"c{i}" for i in range(3000)])
    built = build(vectors, canonical, k=10, ann_threshold=1000, recall_sample=200)
    assert built.method == "faiss-hnsw"
    assert built.recall is not None and built.recall >= 0.9
    small = build(vectors[:500], canonical[:500], k=10, ann_threshold=1000)
    assert (small.method, small.recall) == ("exact", None)


def test_recall_counts_overlap() -> None:
    from podrec.content.similarity import Neighbours

    exact = Neighbours(np.array([[1, 2], [0, 2]]), np.zeros((2, 2)))
    approx = Neighbours(np.array([[1, 3], [0, 2]]), np.zeros((2, 2)))
    assert neighbour_recall(approx, exact, np.array([0, 1])) == 0.75
