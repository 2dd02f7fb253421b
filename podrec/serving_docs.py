"""The documents serving reads, built from the gold and silver tables of one date.

``recommendations``: one per user (and one per language for listeners without history,
``fallback: true``), with the list's policy, bucket, experiment and model version.
``similar``: each episode's content neighbours. ``episodes``: metadata with every language
variant of the episode, so the API can swap a variant for the caller's locale.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd

from podrec.recommendations import POPULAR_USER_PREFIX


def _clean(value: Any) -> Any:
    """pandas/numpy scalars and NaN → plain BSON-friendly values."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):
        return value.item()
    return value


def recommendation_docs(recs: pd.DataFrame) -> Iterator[dict[str, Any]]:
    item_columns = [
        "rank",
        "episode_id",
        "canonical_episode_id",
        "score",
        "als_score",
        "content_score",
        "reason",
    ]
    for user_id, g in recs.sort_values(["user_id", "rank"]).groupby("user_id", sort=False):
        first = g.iloc[0]
        fallback = str(user_id).startswith(POPULAR_USER_PREFIX)
        yield {
            "user_id": user_id,
            "fallback": fallback,
            "language": str(user_id).removeprefix(POPULAR_USER_PREFIX) if fallback else None,
            "locale": _clean(first["locale"]),
            "policy": first["policy"],
            "bucket": _clean(first["bucket"]),
            "experiment_id": first["experiment_id"],
            "model_version": first["model_version"],
            "rec_date": str(first["rec_date"]),
            "items": [{c: _clean(row[c]) for c in item_columns} for _, row in g.iterrows()],
        }


def similar_docs(similarity: pd.DataFrame, episodes: pd.DataFrame) -> Iterator[dict[str, Any]]:
    meta = episodes.set_index("episode_id")[["canonical_episode_id", "language", "title"]]
    joined = similarity.join(meta, on="neighbor_episode_id")
    for episode_id, g in joined.sort_values(["episode_id", "rank"]).groupby("episode_id", sort=False):
        yield {
            "episode_id": episode_id,
            "items": [
                {"rank": int(r["rank"]), "episode_id": r["neighbor_episode_id"],
                 "canonical_episode_id": r["canonical_episode_id"], "language": r["language"],
                 "title": r["title"], "similarity": float(r["similarity"])}
                for _, r in g.iterrows()
            ],
        }  # fmt: skip


def episode_docs(episodes: pd.DataFrame, plays: Mapping[str, int] | None = None) -> Iterator[dict[str, Any]]:
    """Each variant carries its plays, so serving can fall back to the most-played one (DESIGN.md)."""
    plays = plays or {}
    variants = episodes.groupby("canonical_episode_id").apply(
        lambda g: [
            {"episode_id": e, "language": lang, "title": title, "plays": int(plays.get(e, 0))}
            for e, lang, title in zip(g["episode_id"], g["language"], g["title"], strict=True)
        ],
        include_groups=False,
    )
    for row in episodes.itertuples(index=False):
        yield {
            "episode_id": row.episode_id,
            "canonical_episode_id": row.canonical_episode_id,
            "language": row.language,
            "title": row.title,
            "feed_id": _clean(row.feed_id),
            "feed_title": row.feed_title,
            "published_at": _clean(row.published_at),
            "duration_s": _clean(row.duration_s),
            "variants": variants[row.canonical_episode_id],
        }
