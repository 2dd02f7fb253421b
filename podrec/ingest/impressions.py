"""The impression wire format: one UTF-8 JSON object per served list (bronze.impressions), signed by the API.

The API writes one record per list it answers (api/recommendations.py, through podrec.serving.impression_log).
``validate`` is the single definition of what ingestion accepts, with the same contract as
``podrec.ingest.events.validate``: total (never raises, whatever the bytes), held to the same
``RecordLimits`` before parsing, with the same id rule, and says why a record is refused.

Whoever can write the topic could otherwise put any arm and any propensity into the readouts, so a
record must also keep ``ImpressionRules``:
- **signed**: ``signature`` is ``hmac-sha256:`` and the hex HMAC-SHA256, under the impressions signing
  key, of the record's ``canonical`` bytes — the record without ``signature`` as JSON with sorted keys,
  no whitespace and non-ASCII escaped. Ingestion computes them from what it parsed, so what it accepts
  is exactly what was signed, however a producer spaced or ordered its fields. Checked first: until it
  holds, nothing in the record is known to come from the API.
- **served in the listener's arm**: ``bucket`` is ``H(user_id + experiment_id) mod 100``, a rule that
  holds for every experiment; in the configured experiment, ``policy`` is what ``podrec.recsys.ab.assign``
  gives that bucket. Another experiment's policy is taken as signed: its split is no longer configured
  here, and its lists — still on the topic when the experiment changed — were genuinely served.
- **no propensity below the floor**, so that no inverse-propensity weight exceeds 1 / floor.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
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
    is_text,
    number_error,
    parse_json,
    parse_timestamp,
)
from podrec.recsys import ab
from podrec.settings import AbSettings

REQUIRED_STRINGS = ("impression_id", "user_id", "served_version", "experiment_id", "policy", "served_at")
OPTIONAL_STRINGS = ("source", "locale", "model_version")
ID_FIELDS = ("impression_id", "user_id")
MAX_ITEMS = 500
SIGNATURE_SCHEME = "hmac-sha256:"
SIGNATURE = re.compile(SIGNATURE_SCHEME + "[0-9a-f]{64}")


@dataclass(frozen=True)
class ImpressionRules:
    """What ingestion holds an impression to beyond its shape: ``key`` (the signing key's bytes, never
    shown), the configured experiment (``settings.ab``), and the propensity floor."""

    key: bytes = field(repr=False)
    ab: AbSettings
    min_propensity: float


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a signature covers: ``record`` without ``signature``, as JSON with sorted keys, no
    whitespace and non-ASCII escaped (``\\uXXXX``), so key order and spacing never change them."""
    unsigned = {k: v for k, v in record.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()


def sign(record: dict[str, Any], key: bytes) -> str:
    """The ``signature`` of ``record`` under ``key``: ``hmac-sha256:`` and 64 hex digits."""
    return SIGNATURE_SCHEME + hmac.new(key, canonical(record), hashlib.sha256).hexdigest()


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

    def wire(self, key: bytes) -> bytes:
        """The record's bytes, signed with ``key``; propensity and explored only where they were set."""
        items = [{k: v for k, v in item.items() if v is not None} for item in self.items]
        body = {
            "impression_id": self.impression_id, "user_id": self.user_id,
            "served_version": self.served_version, "experiment_id": self.experiment_id,
            "bucket": self.bucket, "policy": self.policy, "source": self.source, "locale": self.locale,
            "model_version": self.model_version,
            "served_at": self.served_at.astimezone(UTC).isoformat().replace("+00:00", "Z"), "items": items,
        }  # fmt: skip
        record = {k: v for k, v in body.items() if v is not None}
        return json.dumps({**record, "signature": sign(record, key)}, separators=(",", ":")).encode()


def _reject(reason: str) -> Validated:
    return Validated(None, reason)


def _signature_error(record: dict[str, Any], key: bytes) -> str | None:
    given = record.get("signature")
    if given is None:
        return "bad signature: the record is not signed"
    # The pattern first: compare_digest raises on non-ASCII text, and a malformed value needs no HMAC.
    if not isinstance(given, str) or SIGNATURE.fullmatch(given) is None:
        return f"bad signature: expected {SIGNATURE_SCHEME} and 64 lowercase hex digits"
    if not hmac.compare_digest(given, sign(record, key)):
        return "bad signature: it does not match the record (altered, or signed with another key)"
    return None


def _arm_error(
    user_id: str, experiment_id: str, given: int, policy: str, rules: ImpressionRules
) -> str | None:
    if experiment_id != rules.ab.experiment_id:
        expected = ab.bucket(user_id, experiment_id)
        if given != expected:
            return f"wrong arm: bucket {given} is not the listener's bucket {expected} in its experiment"
        return None
    expected, served = ab.assign(user_id, rules.ab)
    if given != expected:
        return (
            f"wrong arm: bucket {given} is not the listener's bucket {expected} in experiment {experiment_id}"
        )
    if policy != served:
        return (
            f"wrong arm: experiment {experiment_id} serves bucket {expected} with {served}, not this policy"
        )
    return None


def _item_error(item: Any, index: int, min_propensity: float) -> str | None:
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
    if propensity is not None and propensity < min_propensity:
        return f"propensity below the floor: items[{index}].propensity is under {min_propensity:g}"
    if item.get("explored") is not None and not isinstance(item["explored"], bool):
        return f"bad item: items[{index}].explored must be true or false"
    return None


def validate(
    raw: bytes | None, received_at: datetime, limits: RecordLimits = DEFAULT_LIMITS, *, rules: ImpressionRules
) -> Validated:
    """Accept a record as an impression (``served_at`` parsed, items normalised) if it keeps ``rules``,
    or say why not. Never raises, whatever ``raw`` holds."""
    obj, error = parse_json(raw, limits)
    if error:
        return _reject(error)
    if not isinstance(obj, dict):
        return _reject(f"bad JSON: expected an object, got {type(obj).__name__}")
    if error := _signature_error(obj, rules.key):
        return _reject(error)
    missing = [f for f in (*REQUIRED_STRINGS, "bucket", "items") if obj.get(f) in (None, "", [])]
    if missing:
        return _reject("missing field(s): " + ", ".join(missing))
    for name in (*REQUIRED_STRINGS, *OPTIONAL_STRINGS):
        value = obj.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_ID_LENGTH):
            return _reject(f"wrong type: {name} must be a string of at most {MAX_ID_LENGTH} characters")
        if value is not None and not is_text(value):
            return _reject(f"bad text: {name} holds a lone surrogate, which no UTF-8 text can")
    for name in ID_FIELDS:
        if error := id_error(name, obj[name]):
            return _reject(error)
    bucket = obj["bucket"]
    if isinstance(bucket, bool) or not isinstance(bucket, int) or not 0 <= bucket <= 99:
        return _reject("wrong type: bucket must be an integer in 0..99")
    if error := _arm_error(obj["user_id"], obj["experiment_id"], bucket, obj["policy"], rules):
        return _reject(error)
    items = obj["items"]
    if not isinstance(items, list) or len(items) > MAX_ITEMS:
        return _reject(f"wrong type: items must be a list of at most {MAX_ITEMS} objects")
    for index, item in enumerate(items):
        error = _item_error(item, index, rules.min_propensity)
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
