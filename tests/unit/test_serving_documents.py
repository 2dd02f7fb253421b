"""The serving documents, built from tiny frames shaped as Spark's ``toPandas`` returns the tables."""

from datetime import date

import pandas as pd

from podrec.serving.documents import episode_docs, recommendation_docs, similar_docs, variants_by_canonical

EPISODES = pd.DataFrame(
    {
        "episode_id": ["b-it", "a", "b-en"],
        "canonical_episode_id": ["b", "a", "b"],
        "language": ["it", "en", "en"],
        "title": ["B (it)", "A", "B (en)"],
        "feed_id": [7, 8, 9],
        "feed_title": ["F7", "F8", "F9"],
        "published_at": pd.to_datetime(["2026-11-01", None, "2026-11-02"], utc=True),
        "duration_s": [60.0, float("nan"), 90.0],
    }
)
VARIANTS = variants_by_canonical(EPISODES, {"b-en": 4, "b-it": 2})


def recs() -> pd.DataFrame:
    """Two listeners and a popular list, out of order; a null bucket makes the column float (as
    toPandas does for a nullable int with nulls) and null scores arrive as NaN."""
    rows = [
        ("u2", 2, "a", "a", 0.5, 0.4, float("nan"), "hybrid", "why a", 7.0, "e1", "it-IT"),
        ("u1", 1, "b-en", "b", 0.9, float("nan"), 0.8, "als_only", "why b", 70.0, "e1", "en-US"),
        ("u2", 1, "b-en", "b", 0.7, 0.6, 0.1, "hybrid", "why b", 7.0, "e1", "it-IT"),
        ("__popular__/it", 1, "a", "a", 3.0, None, None, "popular", "popular", float("nan"), "e1", None),
    ]
    columns = ["user_id", "rank", "episode_id", "canonical_episode_id", "score", "als_score",
               "content_score", "policy", "reason", "bucket", "experiment_id", "locale"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns).astype({"rank": "int32"})
    return frame.assign(model_version="m1", rec_date=date(2026, 11, 20))


def test_variants_carry_plays_and_are_ordered_by_episode_id() -> None:
    assert VARIANTS == {
        "a": [{"episode_id": "a", "language": "en", "title": "A", "plays": 0}],
        "b": [
            {"episode_id": "b-en", "language": "en", "title": "B (en)", "plays": 4},
            {"episode_id": "b-it", "language": "it", "title": "B (it)", "plays": 2},
        ],
    }


def test_one_list_per_listener_in_rank_order_with_plain_values() -> None:
    docs = {d["_id"]: d for d in recommendation_docs(recs(), VARIANTS)}
    assert list(docs) == ["__popular__/it", "u1", "u2"]
    u2 = docs["u2"]
    assert {k: v for k, v in u2.items() if k != "items"} == {
        "_id": "u2", "user_id": "u2", "fallback": False, "language": None, "locale": "it-IT",
        "policy": "hybrid", "bucket": 7, "experiment_id": "e1", "model_version": "m1",
        "rec_date": "2026-11-20",
    }  # fmt: skip
    assert u2["items"] == [
        {"rank": 1, "episode_id": "b-en", "canonical_episode_id": "b", "score": 0.7, "als_score": 0.6,
         "content_score": 0.1, "reason": "why b", "variants": VARIANTS["b"]},
        {"rank": 2, "episode_id": "a", "canonical_episode_id": "a", "score": 0.5, "als_score": 0.4,
         "content_score": None, "reason": "why a", "variants": VARIANTS["a"]},
    ]  # fmt: skip
    assert docs["u1"]["items"][0]["als_score"] is None and type(docs["u1"]["bucket"]) is int
    popular = docs["__popular__/it"]
    assert (popular["fallback"], popular["language"], popular["bucket"], popular["locale"]) == (
        True, "it", None, None,
    )  # fmt: skip
    assert all(
        type(v) in (str, int, float, bool, type(None), list) for d in docs.values() for v in d.values()
    )
    assert type(u2["items"][0]["rank"]) is int and type(u2["items"][0]["score"]) is float


def test_similar_lists_name_each_neighbour_with_its_variants() -> None:
    similarity = pd.DataFrame(
        {"episode_id": ["a", "a"], "neighbor_episode_id": ["b-it", "b-en"], "similarity": [0.5, 0.75],
         "rank": [2, 1]}
    )  # fmt: skip
    (doc,) = similar_docs(similarity, EPISODES, VARIANTS)
    assert doc == {
        "_id": "a",
        "episode_id": "a",
        "items": [
            {"rank": 1, "episode_id": "b-en", "canonical_episode_id": "b", "language": "en",
             "title": "B (en)", "similarity": 0.75, "variants": VARIANTS["b"]},
            {"rank": 2, "episode_id": "b-it", "canonical_episode_id": "b", "language": "it",
             "title": "B (it)", "similarity": 0.5, "variants": VARIANTS["b"]},
        ],
    }  # fmt: skip


def test_episode_documents_turn_missing_values_into_none() -> None:
    docs = {d["_id"]: d for d in episode_docs(EPISODES, VARIANTS)}
    assert docs["a"] == {
        "_id": "a", "episode_id": "a", "canonical_episode_id": "a", "language": "en", "title": "A",
        "feed_id": 8, "feed_title": "F8", "published_at": None, "duration_s": None, "variants": VARIANTS["a"],
    }  # fmt: skip
    assert docs["b-it"]["published_at"].isoformat() == "2026-11-01T00:00:00+00:00"
    assert docs["b-en"]["duration_s"] == 90.0
