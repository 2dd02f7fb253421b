"""The impression wire format: one UTF-8 JSON object per served list (DESIGN.md, bronze.impressions).

The API writes one record per list it answers (api/impressions.py); anything else that serves lists
may too. ``validate`` is the single definition of what ingestion accepts, with the same contract as
``podrec.ingest.events.validate``: total (never raises, whatever the bytes), held to the same
``RecordLimits`` before parsing, with the same id rule, and says why a record is refused.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from podrec.ids import id_error
from podrec.ingest.events import (
    DEFAULT_LIMITS,
    FUTURE_TOLERANCE,
    MAX_ID_LENGTH,
    RecordLimits,
    Validated,
    number_error,
    parse_json,
    parse_timestamp,
)

REQUIRED_STRINGS = ("impression_id", "user_id", "served_version", "experiment_id", "policy", "served_at")
OPTIONAL_STRINGS = ("source", "locale", "model_version")
ID_FIELDS = ("impression_id", "user_id")
MAX_ITEMS = 500


@dataclass(frozen=True)
class Impression:
    """A list as it was served; ``items`` are (episode_id, rank, propensity, explored) dicts."""

    user_id: str
    served_version: str
    experiment_id: str
    bucket: int
    policy: str
    source: str
    locale: str | None
    model_version: str | None
    served_at: datetime
    items: list[dict[str, Any]]
    impression_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def wire(self) -> bytes:
        """The record's bytes; propensity and explored only where exploration set them."""
        items = [{k: v for k, v in item.items() if v is not None} for item in self.items]
        body = {
            "impression_id": self.impression_id, "user_id": self.user_id,
            "served_version": self.served_version, "experiment_id": self.experiment_id,
            "bucket": self.bucket, "policy": self.policy, "source": self.source, "locale": self.locale,
            "model_version": self.model_version,
            "served_at": self.served_at.astimezone(UTC).isoformat().replace("+00:00", "Z"), "items": items,
        }  # fmt: skip
        return json.dumps({k: v for k, v in body.items() if v is not None}, separators=(",", ":")).encode()


def _reject(reason: str) -> Validated:
    return Validated(None, reason)


def _item_error(item: Any, index: int) -> str | None:
    if not isinstance(item, dict):
        return f"bad item: items[{index}] is not an object"
    episode, rank = item.get("episode_id"), item.get("rank")
    if id_error("episode_id", episode):
        return f"bad item: items[{index}].episode_id must be an id"
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= MAX_ITEMS:
        return f"bad item: items[{index}].rank must be an integer in 1..{MAX_ITEMS}"
    propensity = item.get("propensity")
    if propensity is not None and (number_error("propensity", propensity) or not 0 < propensity <= 1):
        return f"bad item: items[{index}].propensity must be a number in (0, 1]"
    if item.get("explored") is not None and not isinstance(item["explored"], bool):
        return f"bad item: items[{index}].explored must be true or false"
    return None


def validate(raw: bytes | None, received_at: datetime, limits: RecordLimits = DEFAULT_LIMITS) -> Validated:
    """Accept a record as an impression (``served_at`` parsed, items normalised), or say why not.
    Never raises, whatever ``raw`` holds."""
    obj, error = parse_json(raw, limits)
    if error:
        return _reject(error)
    if not isinstance(obj, dict):
        return _reject(f"bad JSON: expected an object, got {type(obj).__name__}")
    missing = [f for f in (*REQUIRED_STRINGS, "bucket", "items") if obj.get(f) in (None, "", [])]
    if missing:
        return _reject("missing field(s): " + ", ".join(missing))
    for name in (*REQUIRED_STRINGS, *OPTIONAL_STRINGS):
        value = obj.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_ID_LENGTH):
            return _reject(f"wrong type: {name} must be a string of at most {MAX_ID_LENGTH} characters")
    for name in ID_FIELDS:
        if error := id_error(name, obj[name]):
            return _reject(error)
    bucket = obj["bucket"]
    if isinstance(bucket, bool) or not isinstance(bucket, int) or not 0 <= bucket <= 99:
        return _reject("wrong type: bucket must be an integer in 0..99")
    items = obj["items"]
    if not isinstance(items, list) or len(items) > MAX_ITEMS:
        return _reject(f"wrong type: items must be a list of at most {MAX_ITEMS} objects")
    for index, item in enumerate(items):
        error = _item_error(item, index)
        if error:
            return _reject(error)
    if len({item["rank"] for item in items}) < len(items):
        return _reject("bad item: two items share a rank")
    try:
        served_at = parse_timestamp(obj["served_at"])
    except ValueError as exc:
        return _reject(f"bad served_at: {exc}")
    if served_at > received_at + FUTURE_TOLERANCE:
        return _reject(
            f"served_at in the future: {served_at.isoformat()} > received {received_at.isoformat()}"
        )
    record = {name: obj.get(name) for name in (*REQUIRED_STRINGS, *OPTIONAL_STRINGS)}
    record.update(
        bucket=bucket,
        served_at=served_at,
        items=[
            {
                "episode_id": item["episode_id"],
                "rank": item["rank"],
                "propensity": None if item.get("propensity") is None else float(item["propensity"]),
                "explored": item.get("explored"),
            }
            for item in sorted(items, key=lambda i: i["rank"])
        ],
    )
    return Validated(record, None)
