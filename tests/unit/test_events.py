import json
from datetime import UTC, datetime

import pytest

from podrec.ingest.events import encode, validate

RECEIVED = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
GOOD = {
    "event_id": "e1", "user_id": "u1", "episode_id": "ep1", "event_type": "progress",
    "occurred_at": "2026-11-23T08:15:00Z", "position_s": 120, "episode_duration_s": 1800.5,
    "session_id": "s1", "locale": "it-IT", "device": "ios",
}  # fmt: skip


def raw(**changes: object) -> bytes:
    return json.dumps({k: v for k, v in {**GOOD, **changes}.items() if v is not None}).encode()


def test_accepts_the_documented_format() -> None:
    result = validate(raw(), RECEIVED)
    assert result.error is None
    assert result.event["occurred_at"] == datetime(2026, 11, 23, 8, 15, tzinfo=UTC)
    assert result.event["position_s"] == 120.0
    assert result.event["locale"] == "it-IT"


def test_offsets_are_normalised_to_utc() -> None:
    event = validate(raw(occurred_at="2026-11-23T10:15:00+02:00"), RECEIVED).event
    assert event["occurred_at"] == datetime(2026, 11, 23, 8, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (b"{not json", "bad JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"42", "bad JSON: expected an object, got int"),
        (raw(user_id=None), "missing field(s): user_id"),
        (raw(event_id="", episode_id=None), "missing field(s): event_id, episode_id"),
        (raw(user_id=7), "wrong type: user_id must be a string, got int"),
        (raw(position_s="7"), "wrong type: position_s must be a number, got str"),
        (raw(position_s=True), "wrong type: position_s must be a number, got bool"),
        (raw(position_s=-1), "out of range: position_s is negative"),
        (raw(event_type="share"), "unknown event_type: 'share'"),
        (raw(occurred_at="2026-11-23 08:15"), "bad occurred_at: timestamp has no UTC offset"),
        (raw(occurred_at="2027-01-01T00:00:00Z"), "occurred_at in the future"),
        (None, "empty record"),
    ],
)
def test_rejects_with_a_reason(record: bytes | None, reason: str) -> None:
    result = validate(record, RECEIVED)
    assert result.event is None
    assert result.error.startswith(reason)


def test_small_clock_skew_is_tolerated() -> None:
    assert validate(raw(occurred_at="2026-11-23T09:05:00Z"), RECEIVED).error is None


def test_encode_round_trips() -> None:
    event = validate(raw(), RECEIVED).event
    again = validate(encode(event), RECEIVED).event
    assert again == event
    assert b'"occurred_at":"2026-11-23T08:15:00Z"' in encode(event)
