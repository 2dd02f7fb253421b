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

from podrec.ids import POPULAR_USER_PREFIX

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


def _column(series: pd.Series) -> list[Any]:
    """A column as plain Python values, NaN/NaT as None: one conversion per column, not per cell,
    so building 20,000 lists costs a fraction of a second rather than the publish's whole budget."""
    if series.dtype.kind == "M":
        return [_clean(v) for v in series]
    values = series.tolist()  # numpy scalars → Python int/float/str
    if series.dtype.kind == "f":
        return [None if v != v else v for v in values]
    return [_clean(v) for v in values] if series.dtype.kind == "O" else values


def _ints(series: pd.Series) -> list[int | None]:
    """A nullable integer column (float in pandas when it holds nulls) as ints and None."""
    return [None if v is None else int(v) for v in _column(series)]


def _runs(keys: list[Any]) -> Iterator[tuple[int, int]]:
    """(start, end) of each run of equal keys in an already sorted list."""
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            yield start, i
            start = i


def variants_by_canonical(episodes: pd.DataFrame, plays: Mapping[str, int] | None = None) -> Variants:
    """Every language variant of each canonical episode, with its plays, so serving can fall back to
    the most-played one (docs/design.md, Language variants)."""
    plays = plays or {}
    out: dict[str, list[dict[str, Any]]] = {}
    for row in episodes.sort_values("episode_id").itertuples(index=False):
        out.setdefault(row.canonical_episode_id, []).append(
            {"episode_id": row.episode_id, "language": row.language, "title": row.title,
             "plays": int(plays.get(row.episode_id, 0))}
        )  # fmt: skip
    return out


def recommendation_docs(recs: pd.DataFrame, variants: Variants) -> Iterator[dict[str, Any]]:
    recs = recs.sort_values(["user_id", "rank"], kind="stable")
    users = _column(recs["user_id"])
    item_columns = ("rank", "episode_id", "canonical_episode_id", "score", "als_score", "content_score",
                    "reason")  # fmt: skip
    items = [
        {**dict(zip(item_columns, values, strict=True)), "variants": variants.get(values[2], [])}
        for values in zip(*(_column(recs[c]) for c in item_columns), strict=True)
    ]
    locales, policies, buckets = _column(recs["locale"]), _column(recs["policy"]), _ints(recs["bucket"])
    experiments, models = _column(recs["experiment_id"]), _column(recs["model_version"])
    dates = _column(recs["rec_date"])
    for start, end in _runs(users):
        user_id = users[start]
        fallback = str(user_id).startswith(POPULAR_USER_PREFIX)
        yield {
            "_id": user_id,
            "user_id": user_id,
            "fallback": fallback,
            "language": str(user_id).removeprefix(POPULAR_USER_PREFIX) if fallback else None,
            "locale": locales[start],
            "policy": policies[start],
            "bucket": buckets[start],
            "experiment_id": experiments[start],
            "model_version": models[start],
            "rec_date": str(dates[start]),
            "items": items[start:end],
        }


def similar_docs(
    similarity: pd.DataFrame, episodes: pd.DataFrame, variants: Variants
) -> Iterator[dict[str, Any]]:
    meta = episodes.set_index("episode_id")[["canonical_episode_id", "language", "title"]]
    joined = similarity.join(meta, on="neighbor_episode_id").sort_values(
        ["episode_id", "rank"], kind="stable"
    )
    ids = _column(joined["episode_id"])
    items = [
        {"rank": int(rank), "episode_id": neighbour, "canonical_episode_id": canonical, "language": language,
         "title": title, "similarity": float(score), "variants": variants.get(canonical, [])}
        for rank, neighbour, canonical, language, title, score in zip(
            *(_column(joined[c]) for c in ("rank", "neighbor_episode_id", "canonical_episode_id", "language",
                                           "title", "similarity")), strict=True)
    ]  # fmt: skip
    for start, end in _runs(ids):
        yield {"_id": ids[start], "episode_id": ids[start], "items": items[start:end]}


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
