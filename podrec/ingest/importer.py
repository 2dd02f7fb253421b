"""Bring-your-own interaction log → events on the topic, so everything downstream runs on it.

Accepts CSV or Parquet with a user column, an item column, a timestamp and either a rating
or an event type. Column names are matched case-insensitively against common spellings
(MovieLens ``userId/movieId/rating/timestamp`` works as is).

Cells are read as written (ids are never parsed as numbers, so ``007`` stays ``007``), and a row
that cannot be an event as written is rejected with its reason rather than reinterpreted: a missing
user or item id, a missing or unparsable timestamp, a missing or non-numeric rating when ratings
are the signal, a missing event type when types are. Rejected rows go to
``bronze.user_events_rejected`` beside the records ingestion rejects (``rejected_rows``): every row
of a log is accounted for, as an event on the topic or as a rejected row.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from podrec.ids import id_error
from podrec.privacy import FORGOTTEN, user_hash

ALIASES = {
    "user": ("user_id", "user", "userid", "customer_id", "listener_id"),
    "item": ("episode_id", "item_id", "item", "itemid", "movieid", "track_id", "product_id"),
    "timestamp": ("occurred_at", "timestamp", "ts", "time", "datetime", "event_time"),
    "rating": ("rating", "score", "stars"),
    "event_type": ("event_type", "event", "action", "type"),
}
# Cells that spell "no value" in exported logs (pandas' own list, compared case-insensitively).
MISSING = frozenset({"", "nan", "null", "none", "na", "n/a", "#n/a", "<na>", "nat"})
# Rows rejected by an import have no Kafka position: this partition marks them, the offset is the row.
IMPORT_PARTITION = -1


class ImportFormatError(ValueError):
    """The file is not a log podrec can read; the message names what it looked for."""


@dataclass(frozen=True)
class RejectedRow:
    row: int  # 1-based number of the data row (the header is not counted)
    raw: str  # the row as it was read
    reason: str


@dataclass(frozen=True)
class CheckedLog:
    """A log's rows that can be events (user, item, occurred_at, and kind or rating), and the rest."""

    rows: pd.DataFrame
    rejected: list[RejectedRow]
    by_type: bool  # the log gives event types (else ratings)
    total: int

    def reasons(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.rejected:
            head = r.reason.split(":")[0]
            counts[head] = counts.get(head, 0) + 1
        return counts


def _column(df: pd.DataFrame, role: str, required: bool = True) -> str | None:
    lower = {str(c).lower(): c for c in df.columns}
    for alias in ALIASES[role]:
        if alias in lower:
            return lower[alias]
    if required:
        raise ImportFormatError(
            f"no {role} column: expected one of {', '.join(ALIASES[role])}; got {list(df.columns)}"
        )
    return None


def read_log(path: Path) -> tuple[pd.DataFrame, list[str], dict[int, str]]:
    """Every cell as written (strings for CSV, Python values for Parquet), each row's raw text, and the
    rows that are malformed (index → why: a CSV row whose fields do not match the header).

    Raises ``ImportFormatError`` for a file that is empty, garbled or not a table."""
    kind = "Parquet" if path.suffix.lower() in (".parquet", ".pq") else "CSV"
    try:
        return _read_parquet(path) if kind == "Parquet" else _read_csv(path)
    except ImportFormatError:
        raise
    except (ValueError, UnicodeDecodeError, csv.Error, OSError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImportFormatError(f"cannot read {path.name} as {kind}: {detail[:200]}") from exc


def _read_csv(path: Path) -> tuple[pd.DataFrame, list[str], dict[int, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        header_line = next((line for line in f if line.strip()), "")
        if not header_line:
            raise ImportFormatError(f"{path.name} is empty")
        try:
            delimiter = csv.Sniffer().sniff(header_line, delimiters=",;\t|").delimiter
        except csv.Error:
            raise ImportFormatError(
                f"cannot read {path.name} as CSV: its header has no , ; tab or | between column names"
            ) from None
        f.seek(0)
        reader = csv.reader(f, delimiter=delimiter)
        header = next(cells for cells in reader if any(c.strip() for c in cells))
        rows: list[list[str]] = []
        raw: list[str] = []
        malformed: dict[int, str] = {}
        for cells in reader:
            if not cells:
                continue  # an empty line is no row
            raw.append(delimiter.join(cells))
            if len(cells) != len(header):
                malformed[len(rows)] = f"{len(cells)} fields where the header has {len(header)}"
                cells = [""] * len(header)
            rows.append(cells)
    return pd.DataFrame(rows, columns=header, dtype=object), raw, malformed


def _read_parquet(path: Path) -> tuple[pd.DataFrame, list[str], dict[int, str]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    frame = pd.DataFrame(
        {name: pd.Series(table.column(name).to_pylist(), dtype=object) for name in table.column_names}
    )
    raw = [json.dumps(dict(zip(frame.columns, cells, strict=True)), default=str)
           for cells in frame.itertuples(index=False, name=None)]  # fmt: skip
    return frame, raw, {}


def _text(value: Any) -> str | None:
    """A cell as an id or a type: None when it spells "no value"; integral floats without ``.0``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return None if text.lower() in MISSING else text


def _timestamps(values: pd.Series) -> pd.Series:
    """UTC timestamps, NaT where a cell is not one. Numbers are epoch seconds, or milliseconds when the
    column's numbers are that large; other cells are dates and times, naive ones taken as UTC."""
    # As text first: pandas converts a Python integer beyond a double by raising, its text to NaN.
    texts = values.map(_text)
    numbers = pd.to_numeric(texts, errors="coerce")
    # Beyond year 9999 in milliseconds no number is a time (pandas raises on them even with coerce).
    numbers = numbers.where(numbers.abs() < 2.5e14)
    unit = "ms" if numbers.max() > 10**11 else "s"
    epochs = pd.to_datetime(numbers, unit=unit, utc=True, errors="coerce")
    written = pd.to_datetime(
        texts.where(texts.notna() & numbers.isna()), utc=True, format="mixed", errors="coerce"
    )
    return epochs.where(numbers.notna(), written)


def check_log(
    df: pd.DataFrame,
    raw: list[str] | None = None,
    malformed: dict[int, str] | None = None,
    forgotten: frozenset[str] = frozenset(),
) -> CheckedLog:
    """Split a log into rows that are events as written and rows rejected with a reason (``raw`` and
    ``malformed`` as ``read_log`` gives them). Rows of a listener whose hash is in ``forgotten`` (the
    suppression list) are rejected as such, and their text is not kept."""
    user_col, item_col, ts_col = _column(df, "user"), _column(df, "item"), _column(df, "timestamp")
    type_col, rating_col = _column(df, "event_type", required=False), _column(df, "rating", required=False)
    if type_col is None and rating_col is None:
        raise ImportFormatError("need a rating or an event_type column (e.g. 'rating' or 'event_type')")
    malformed = malformed or {}
    users, items = df[user_col].map(_text), df[item_col].map(_text)
    stamps = df[ts_col].map(_text)
    times = _timestamps(df[ts_col])
    kinds = df[type_col].map(_text) if type_col is not None else None
    rating_cells = df[rating_col].map(_text) if type_col is None and rating_col is not None else None
    ratings = None if rating_cells is None else pd.to_numeric(rating_cells, errors="coerce").astype(float)
    # Each row's first problem, in this order; a row with none is an event as written.
    suppressed = users.map(lambda u: u is not None and user_hash(u) in forgotten).to_numpy(dtype=bool)
    problems = [
        (suppressed, lambda i: FORGOTTEN),
        (pd.Series(range(len(df))).isin(list(malformed)).to_numpy(), lambda i: malformed[i]),
        (users.isna().to_numpy(), lambda i: "missing user id"),
        (items.isna().to_numpy(), lambda i: "missing item id"),
        (users.map(id_error_of("user_id")).notna().to_numpy(), lambda i: id_error("user_id", users.iat[i])),
        (
            items.map(id_error_of("episode_id")).notna().to_numpy(),
            lambda i: id_error("episode_id", items.iat[i]),
        ),
        (stamps.isna().to_numpy(), lambda i: "missing timestamp"),
        (times.isna().to_numpy(), lambda i: f"unparsable timestamp: {stamps.iat[i][:40]!r}"),
    ]
    if kinds is not None:
        problems.append((kinds.isna().to_numpy(), lambda i: "missing event_type"))
    if ratings is not None:
        problems.append((rating_cells.isna().to_numpy(), lambda i: "missing rating"))
        problems.append(
            (~ratings.map(math.isfinite).to_numpy(dtype=bool),
             lambda i: f"rating is not a number: {rating_cells.iat[i][:40]!r}")
        )  # fmt: skip
    bad = pd.Series(False, index=range(len(df))).to_numpy()
    rejected: list[RejectedRow] = []
    for mask, reason in problems:
        for i in (mask & ~bad).nonzero()[0]:
            text = "" if suppressed[i] else raw[i] if raw is not None else _raw(df, i)
            rejected.append(RejectedRow(int(i) + 1, text, reason(i)))
        bad = bad | mask
    keep = ~bad
    rows = pd.DataFrame(
        {
            "user": users.to_numpy()[keep],
            "item": items.to_numpy()[keep],
            "occurred_at": times.to_numpy()[keep],
            "kind": kinds.to_numpy()[keep] if kinds is not None else None,
            "rating": ratings.to_numpy()[keep] if ratings is not None else math.nan,
        }
    )
    rejected.sort(key=lambda r: r.row)
    return CheckedLog(rows, rejected, by_type=kinds is not None, total=len(df))


def id_error_of(name: str) -> Callable[[str | None], str | None]:
    """``id_error`` for a column's cells; a missing cell has its own reason, so none here."""
    return lambda value: None if value is None else id_error(name, value)


def _raw(df: pd.DataFrame, i: int) -> str:
    return json.dumps({str(k): v for k, v in df.iloc[i].items()}, default=str)


def _event_id(user: str, item: str, ts: datetime, kind: str) -> str:
    # Deterministic, so importing the same file twice re-sends the same ids (and is deduplicated).
    return hashlib.sha256(f"{user}|{item}|{ts.isoformat()}|{kind}".encode()).hexdigest()[:32]


def _kinds(rating: float, like_rating: float, skip_rating: float) -> list[str]:
    if rating >= like_rating:
        return ["play", "complete", "like"]
    if rating <= skip_rating:
        return ["play", "skip"]
    return ["play", "complete"]


def log_to_events(
    log: CheckedLog, like_rating: float = 4.0, skip_rating: float = 2.0
) -> Iterator[dict[str, Any]]:
    """One accepted interaction → the events that express it.

    With an event type, it is sent as is (unknown types are sent too: ingestion rejects
    them with a reason). With a rating r: r ≥ ``like_rating`` → play, complete, like;
    r ≤ ``skip_rating`` → play then an early skip (a confident negative); otherwise play, complete.
    """
    for user, item, ts, kind, rating in log.rows.itertuples(index=False, name=None):
        when = pd.Timestamp(ts).to_pydatetime().astimezone(UTC)
        for event_type in [kind] if log.by_type else _kinds(rating, like_rating, skip_rating):
            yield {
                "event_id": _event_id(user, item, when, event_type),
                "user_id": user,
                "episode_id": item,
                "event_type": event_type,
                # A rating-derived skip happens at once: position 0 marks it as an early skip.
                "position_s": 0.0 if event_type == "skip" and not log.by_type else None,
                "occurred_at": when,
                "session_id": f"import-{user}",
            }


def count_events(log: CheckedLog, like_rating: float = 4.0, skip_rating: float = 2.0) -> int:
    """How many events ``log_to_events`` yields, for a progress bar's total."""
    if log.by_type:
        return len(log.rows)
    return int(len(log.rows) * 2 + (log.rows["rating"] >= like_rating).sum())


def rejected_rows(log: CheckedLog, source: str, received_at: datetime) -> pd.DataFrame:
    """The rejected rows as ``bronze.user_events_rejected`` rows: raw row, reason (naming the file and
    row), partition ``IMPORT_PARTITION`` and the row number as the offset, dated when received."""
    received = pd.Timestamp(received_at).tz_convert("UTC")
    n = len(log.rejected)
    return pd.DataFrame(
        {
            "raw": [r.raw.encode() for r in log.rejected],
            "raw_text": [r.raw for r in log.rejected],
            "error": [f"{r.reason} (imported from {source}, row {r.row})" for r in log.rejected],
            "kafka_partition": pd.Series([IMPORT_PARTITION] * n, dtype="int32"),
            "kafka_offset": pd.Series([r.row for r in log.rejected], dtype="int64"),
            "received_at": pd.Series([received] * n, dtype="datetime64[us, UTC]"),
            "event_date": [received.date()] * n,
        }
    )
