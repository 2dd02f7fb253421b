"""Bring-your-own interaction log → events on the topic, so everything downstream runs on it.

Accepts CSV or Parquet with a user column, an item column, a timestamp and either a rating
or an event type. Column names are matched case-insensitively against common spellings
(MovieLens ``userId/movieId/rating/timestamp`` works as is).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

ALIASES = {
    "user": ("user_id", "user", "userid", "customer_id", "listener_id"),
    "item": ("episode_id", "item_id", "item", "itemid", "movieid", "track_id", "product_id"),
    "timestamp": ("occurred_at", "timestamp", "ts", "time", "datetime", "event_time"),
    "rating": ("rating", "score", "stars"),
    "event_type": ("event_type", "event", "action", "type"),
}


class ImportFormatError(ValueError):
    """The file lacks a column podrec needs; the message names what it looked for."""


def _column(df: pd.DataFrame, role: str, required: bool = True) -> str | None:
    lower = {c.lower(): c for c in df.columns}
    for alias in ALIASES[role]:
        if alias in lower:
            return lower[alias]
    if required:
        raise ImportFormatError(
            f"no {role} column: expected one of {', '.join(ALIASES[role])}; got {list(df.columns)}"
        )
    return None


def read_log(path: Path) -> pd.DataFrame:
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path, sep=None, engine="python")  # sniffs , ; \t and ::-less formats


def _timestamps(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        # Epoch seconds, or milliseconds when the numbers are that large.
        unit = "ms" if values.max() > 10**11 else "s"
        return pd.to_datetime(values, unit=unit, utc=True)
    return pd.to_datetime(values, utc=True, format="mixed")


def _event_id(user: str, item: str, ts: datetime, kind: str) -> str:
    # Deterministic, so importing the same file twice re-sends the same ids (and is deduplicated).
    return hashlib.sha256(f"{user}|{item}|{ts.isoformat()}|{kind}".encode()).hexdigest()[:32]


def log_to_events(
    df: pd.DataFrame, like_rating: float = 4.0, skip_rating: float = 2.0
) -> Iterator[dict[str, Any]]:
    """One interaction → the events that express it.

    With an event type, it is sent as is (unknown types are sent too: ingestion rejects
    them with a reason). With a rating r: r ≥ ``like_rating`` → play, complete, like;
    r ≤ ``skip_rating`` → play then an early skip (a confident negative); otherwise play, complete.
    """
    user_col, item_col, ts_col = _column(df, "user"), _column(df, "item"), _column(df, "timestamp")
    type_col, rating_col = _column(df, "event_type", required=False), _column(df, "rating", required=False)
    if type_col is None and rating_col is None:
        raise ImportFormatError("need a rating or an event_type column (e.g. 'rating' or 'event_type')")
    times = _timestamps(df[ts_col])
    for i, (user, item, ts) in enumerate(zip(df[user_col], df[item_col], times, strict=True)):
        user, item = str(user), str(item)
        when = ts.to_pydatetime().astimezone(UTC)
        if type_col is not None:
            kinds = [str(df[type_col].iat[i])]
        else:
            rating = float(df[rating_col].iat[i])
            if rating >= like_rating:
                kinds = ["play", "complete", "like"]
            elif rating <= skip_rating:
                kinds = ["play", "skip"]
            else:
                kinds = ["play", "complete"]
        for kind in kinds:
            yield {
                "event_id": _event_id(user, item, when, kind),
                "user_id": user,
                "episode_id": item,
                "event_type": kind,
                # A rating-derived skip happens at once: position 0 marks it as an early skip.
                "position_s": 0.0 if kind == "skip" and type_col is None else None,
                "occurred_at": when,
                "session_id": f"import-{user}",
            }


def count_events(df: pd.DataFrame, like_rating: float = 4.0, skip_rating: float = 2.0) -> int:
    """How many events ``log_to_events`` yields, for a progress bar's total."""
    if _column(df, "event_type", required=False) is not None:
        return len(df)
    ratings = df[_column(df, "rating")].astype(float)
    return int(len(df) * 2 + (ratings >= like_rating).sum())
