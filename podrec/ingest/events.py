"""The event wire format: one UTF-8 JSON object per Kafka record.

``validate`` is the single definition of what podrec accepts; everything that is not
accepted comes back with the reason it is rejected. It is *total*: for any bytes it answers, and
never raises — a record is input from anyone who can write the topic, and one that raised would stop
every ingestion behind it. Before any parsing a record is held to ``RecordLimits`` (its size and how
deeply it nests), so no record can make the parser recurse or allocate without bound. Ingestion
evaluates the same rules as Spark SQL expressions (``podrec.ingest.spark_validation``); a test holds
the two to the same decisions.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from podrec.ids import EVENT_ID_FIELDS, id_error

EVENT_TYPES = frozenset({"play", "progress", "pause", "complete", "skip", "like", "unlike"})
REQUIRED = ("event_id", "user_id", "episode_id", "event_type", "occurred_at")
# impression_id: the served list (podrec.ingest.impressions) an event followed from, if any.
OPTIONAL_STRINGS = ("session_id", "locale", "device", "impression_id")
OPTIONAL_NUMBERS = ("position_s", "episode_duration_s")
# The order the type checks run in: the first failing field names the reason.
STRING_FIELDS = (*REQUIRED, *OPTIONAL_STRINGS)
MAX_ID_LENGTH = 200  # of the free-text fields (locale, device, session_id); ids have their own rule
# Producers' clocks drift a little; an event from further ahead than this is a bug, not skew.
FUTURE_TOLERANCE = timedelta(minutes=10)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)

EVENT_FIELDS = [
    "event_id", "user_id", "episode_id", "event_type", "position_s", "episode_duration_s",
    "session_id", "locale", "device", "occurred_at", "impression_id",
]  # fmt: skip


@dataclass(frozen=True)
class Validated:
    event: dict[str, Any] | None
    error: str | None


@dataclass(frozen=True)
class RecordLimits:
    """What a record may be before it is parsed at all (``settings.ingest``)."""

    max_bytes: int = 65_536
    max_depth: int = 16


DEFAULT_LIMITS = RecordLimits()
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(rb"[\[\]{}]")
# The largest magnitude a JSON number may have and still be a double (beyond it float() overflows).
_DOUBLE_MAX = sys.float_info.max


def _reject(reason: str) -> Validated:
    return Validated(None, reason)


def nesting_depth(raw: bytes) -> int:
    """How deeply the JSON text ``raw`` nests arrays and objects (brackets inside strings do not count)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b"", raw)):
        depth += 1 if bracket in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def parse_json(raw: bytes | None, limits: RecordLimits) -> tuple[Any, str | None]:
    """A record's one JSON value, or why it is none: empty, too large, not UTF-8, too deep, or not JSON.

    Held to ``limits`` before the parser sees it: Python's parser recurses once per level (a record of
    10⁵ ``[`` raised RecursionError) and reads integers of any length (one of 5,000 digits raised)."""
    if raw is None:
        return None, "empty record"
    if len(raw) > limits.max_bytes:
        return None, f"too large: {len(raw)} bytes, more than {limits.max_bytes}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8"
    # A text with no more brackets than the limit cannot nest deeper; only others are measured.
    if raw.count(b"[") + raw.count(b"{") > limits.max_depth and nesting_depth(raw) > limits.max_depth:
        return None, f"too deeply nested: more than {limits.max_depth} levels"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"bad JSON: {exc.msg} at char {exc.pos}"
    except ValueError:
        return None, f"bad JSON: a number longer than {sys.get_int_max_str_digits()} digits"


def is_text(value: str) -> bool:
    """Can ``value`` be stored as UTF-8? Python's parser reads ``"\\ud800"`` into a lone surrogate,
    which no UTF-8 writer (Arrow, Delta) takes: an event holding one was accepted, then stopped the
    write of its whole batch."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def number_error(name: str, value: Any) -> str | None:
    """None for a finite JSON number (a double, or an integer a double can hold), else the reason."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"wrong type: {name} must be a number, got {type(value).__name__}"
    if isinstance(value, int):
        # math.isfinite(10**400) raises OverflowError: compare the integer itself.
        return None if -_DOUBLE_MAX <= value <= _DOUBLE_MAX else f"out of range: {name} is beyond a double"
    return None if math.isfinite(value) else f"wrong type: {name} must be a number, got float"


def parse_timestamp(value: str) -> datetime:
    """ISO-8601 with an offset (``2026-11-23T08:15:00Z``); naive times are ambiguous, so refused.

    Raises ValueError only: an instant that has no UTC date (``9999-12-31T23:00:00-05:00``) included.
    Nothing before ``EARLIEST`` is a listening event; refusing it also keeps every accepted instant
    inside the range pandas and Arrow convert without overflow."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("timestamp has no UTC offset")
    try:
        instant = parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp is outside years 1-9999 in UTC") from None
    if instant < EARLIEST:
        raise ValueError(f"timestamp before {EARLIEST.date().isoformat()}")
    return instant


def validate(raw: bytes | None, received_at: datetime, limits: RecordLimits = DEFAULT_LIMITS) -> Validated:
    """Accept a record as an event, or say why not. Never raises, whatever ``raw`` holds."""
    obj, error = parse_json(raw, limits)
    if error:
        return _reject(error)
    if not isinstance(obj, dict):
        return _reject(f"bad JSON: expected an object, got {type(obj).__name__}")
    missing = [f for f in REQUIRED if obj.get(f) in (None, "")]
    if missing:
        return _reject("missing field(s): " + ", ".join(missing))
    for name in STRING_FIELDS:
        value = obj.get(name)
        if value is not None and not isinstance(value, str):
            return _reject(f"wrong type: {name} must be a string, got {type(value).__name__}")
        if value is not None and len(value) > MAX_ID_LENGTH:
            return _reject(f"wrong type: {name} longer than {MAX_ID_LENGTH} characters")
        if value is not None and not is_text(value):
            return _reject(f"bad text: {name} holds a lone surrogate, which no UTF-8 text can")
    for name in OPTIONAL_NUMBERS:
        value = obj.get(name)
        if value is None:
            continue
        if error := number_error(name, value):
            return _reject(error)
        if value < 0:
            return _reject(f"out of range: {name} is negative")
    for name in EVENT_ID_FIELDS:
        if obj.get(name) is not None and (error := id_error(name, obj[name])):
            return _reject(error)
    if obj["event_type"] not in EVENT_TYPES:
        return _reject(f"unknown event_type: {obj['event_type'][:40]!r}")
    try:
        occurred_at = parse_timestamp(obj["occurred_at"])
    except ValueError as exc:
        return _reject(f"bad occurred_at: {exc}")
    if occurred_at > received_at + FUTURE_TOLERANCE:
        return _reject(
            f"occurred_at in the future: {occurred_at.isoformat()} > received {received_at.isoformat()}"
        )
    event = {f: obj.get(f) for f in EVENT_FIELDS}
    event["occurred_at"] = occurred_at
    for name in OPTIONAL_NUMBERS:
        if event[name] is not None:
            event[name] = float(event[name])
    return Validated(event, None)


def encode(event: dict[str, Any]) -> bytes:
    """An event as its wire bytes; datetimes become ISO-8601 UTC with a ``Z``."""
    out = {}
    for key, value in event.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        out[key] = value
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode()
