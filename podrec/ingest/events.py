"""The event wire format: one UTF-8 JSON object per Kafka record (DESIGN.md).

``validate`` is the single definition of what podrec accepts; everything that is not
accepted comes back with the reason it is rejected. Ingestion evaluates the same rules as
Spark SQL expressions (``podrec.ingest.spark_validation``); a test holds the two to the same
decisions.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

EVENT_TYPES = frozenset({"play", "progress", "pause", "complete", "skip", "like", "unlike"})
REQUIRED = ("event_id", "user_id", "episode_id", "event_type", "occurred_at")
# impression_id: the served list (podrec.ingest.impressions) an event followed from, if any.
OPTIONAL_STRINGS = ("session_id", "locale", "device", "impression_id")
OPTIONAL_NUMBERS = ("position_s", "episode_duration_s")
# The order the type checks run in: the first failing field names the reason.
STRING_FIELDS = (*REQUIRED, *OPTIONAL_STRINGS)
MAX_ID_LENGTH = 200
# Producers' clocks drift a little; an event from further ahead than this is a bug, not skew.
FUTURE_TOLERANCE = timedelta(minutes=10)

EVENT_FIELDS = [
    "event_id", "user_id", "episode_id", "event_type", "position_s", "episode_duration_s",
    "session_id", "locale", "device", "occurred_at", "impression_id",
]  # fmt: skip


@dataclass(frozen=True)
class Validated:
    event: dict[str, Any] | None
    error: str | None


def _reject(reason: str) -> Validated:
    return Validated(None, reason)


def parse_timestamp(value: str) -> datetime:
    """ISO-8601 with an offset (``2026-11-23T08:15:00Z``); naive times are ambiguous, so refused."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("timestamp has no UTC offset")
    return parsed.astimezone(UTC)


def validate(raw: bytes | None, received_at: datetime) -> Validated:
    """Accept a record as an event, or say why not. Never raises on bad input."""
    if raw is None:
        return _reject("empty record")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return _reject("not UTF-8")
    except json.JSONDecodeError as exc:
        return _reject(f"bad JSON: {exc.msg} at char {exc.pos}")
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
    for name in OPTIONAL_NUMBERS:
        value = obj.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return _reject(f"wrong type: {name} must be a number, got {type(value).__name__}")
        if value < 0:
            return _reject(f"out of range: {name} is negative")
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
