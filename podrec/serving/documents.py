"""The documents serving reads, built from the gold and silver tables of one date.

Each document's ``_id`` is its natural key (listener or episode), so a request is one lookup by
``_id`` — the one lookup every MongoDB-compatible store answers from an index — and each listed
item carries its canonical episode's language variants, so the API swaps a variant for the
caller's locale without a second query.

``recommendations``: one per user (and one per language for listeners without history,
``fallback: true``), with the list's policy, bucket, experiment and model version.
``similar``: each episode's content neighbours. ``episodes``: metadata with every variant.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd

from podrec.recsys.scoring import POPULAR_USER_PREFIX

Variants = Mapping[str, list[dict[str, Any]]]


def _clean(value: Any) -> Any:
    """pandas/numpy scalars and NaN → plain BSON-friendly values."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):
        return value.item()
    return value


def variants_by_canonical(episodes: pd.DataFrame, plays: Mapping[str, int] | None = None) -> Variants:
    """Every language variant of each canonical episode, with its plays, so serving can fall back to
    the most-played one (DESIGN.md, Language variants)."""
    plays = plays or {}
    out: dict[str, list[dict[str, Any]]] = {}
    for row in episodes.sort_values("episode_id").itertuples(index=False):
        out.setdefault(row.canonical_episode_id, []).append(
            {"episode_id": row.episode_id, "language": row.language, "title": row.title,
             "plays": int(plays.get(row.episode_id, 0))}
        )  # fmt: skip
    return out


def recommendation_docs(recs: pd.DataFrame, variants: Variants) -> Iterator[dict[str, Any]]:
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
        items = [{c: _clean(row[c]) for c in item_columns} for _, row in g.iterrows()]
        for item in items:
            item["variants"] = variants.get(item["canonical_episode_id"], [])
        yield {
            "_id": user_id,
            "user_id": user_id,
            "fallback": fallback,
            "language": str(user_id).removeprefix(POPULAR_USER_PREFIX) if fallback else None,
            "locale": _clean(first["locale"]),
            "policy": first["policy"],
            "bucket": _clean(first["bucket"]),
            "experiment_id": first["experiment_id"],
            "model_version": first["model_version"],
            "rec_date": str(first["rec_date"]),
            "items": items,
        }


def similar_docs(
    similarity: pd.DataFrame, episodes: pd.DataFrame, variants: Variants
) -> Iterator[dict[str, Any]]:
    meta = episodes.set_index("episode_id")[["canonical_episode_id", "language", "title"]]
    joined = similarity.join(meta, on="neighbor_episode_id")
    for episode_id, g in joined.sort_values(["episode_id", "rank"]).groupby("episode_id", sort=False):
        yield {
            "_id": episode_id,
            "episode_id": episode_id,
            "items": [
                {"rank": int(r["rank"]), "episode_id": r["neighbor_episode_id"],
                 "canonical_episode_id": r["canonical_episode_id"], "language": r["language"],
                 "title": r["title"], "similarity": float(r["similarity"]),
                 "variants": variants.get(r["canonical_episode_id"], [])}
                for _, r in g.iterrows()
            ],
        }  # fmt: skip


def episode_docs(episodes: pd.DataFrame, variants: Variants) -> Iterator[dict[str, Any]]:
    for row in episodes.itertuples(index=False):
        yield {
            "_id": row.episode_id,
            "episode_id": row.episode_id,
            "canonical_episode_id": row.canonical_episode_id,
            "language": row.language,
            "title": row.title,
            "feed_id": _clean(row.feed_id),
            "feed_title": row.feed_title,
            "published_at": _clean(row.published_at),
            "duration_s": _clean(row.duration_s),
            "variants": variants.get(row.canonical_episode_id, []),
        }
