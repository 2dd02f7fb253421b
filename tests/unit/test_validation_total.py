"""Validation is total: for any bytes, every validator answers accepted or rejected-with-a-reason.

Property tests over random bytes, JSON of random shape and depth, and event- and impression-shaped
records whose fields take hostile values: timestamps at the edges of the calendar and of every
offset, numbers beyond a double, NaN, NUL, lone surrogates, invalid UTF-8, reserved and odd ids.
Impressions come unsigned (as anyone who can write the topic sends them) and signed with the key
ingestion checks, in their listener's arm, so that every rule after the signature meets them too.
Each property counts what it ran and what raised; ``test_every_property_ran_and_none_raised`` prints
the tally (pytest -s) and holds it to zero raised.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from podrec.ids import is_id
from podrec.ingest import events, impressions
from podrec.ingest.events import EARLIEST, RecordLimits, Validated, is_text
from podrec.ingest.importer import check_log
from podrec.ingest.spark_validation import guarded
from podrec.recsys.ab import assign, bucket
from podrec.settings import AbSettings

RECEIVED = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LIMITS = RecordLimits(max_bytes=4096, max_depth=8)
EXAMPLES = 400
TALLY: Counter[str] = Counter()
RULES = impressions.ImpressionRules(b"a-signing-key-of-32-characters!!", AbSettings(experiment_id="x"), 0.001)
VALIDATORS: dict[str, Callable[..., Validated]] = {
    "events": events.validate,
    "impressions": partial(impressions.validate, rules=RULES),
}

# --- strategies -------------------------------------------------------------------------------

digits = st.integers(0, 9).map(str)
offsets = st.sampled_from(
    ["Z", "z", "+00:00", "-00:00", "+23:59", "-23:59", "+05:30", "-05:00", "+14:00", ""]
)
timestamps = st.one_of(
    st.builds(
        lambda y, mo, d, h, mi, s, frac, off: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}{off}",
        st.sampled_from([1, 2, 999, 1000, 1969, 1970, 2026, 2262, 2263, 9998, 9999]),
        st.integers(0, 13), st.integers(0, 32), st.integers(0, 24), st.integers(0, 60), st.integers(0, 61),
        st.sampled_from(["", ".0", ".123", ".123456", ".1234567"]),
        offsets,
    ),
    st.sampled_from([
        "9999-12-31 23:00:00-05:00", "9999-12-31T23:59:59.999999-23:59", "0001-01-01T00:00:00+23:59",
        "0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999Z", "2026-02-29T00:00:00Z",
        "2026-11-23", "2026-11-23T08:15", "20261123T081500Z", "", " ", "\x00", "2026-11-23T08:15:00+0530",
    ]),
    st.text(max_size=40),
)  # fmt: skip
wild_numbers = st.one_of(
    st.integers(),
    st.integers(-(10**400), 10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([10**308, 10**309, -(10**309), 2**1024, 1e308, -0.0, 5e-324]),
)
hostile_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    st.sampled_from([
        "__popular__/en", "__forgotten__/3", "../../etc", "$where", "u 1", "🎧", "u1\n", "\x00", "a" * 129,
        "a" * 201, "-leading", '{"$gt": ""}', "\ud800", "u1", "ep-1", "play", "like",
    ]),
)  # fmt: skip
scalars = st.one_of(st.none(), st.booleans(), wild_numbers, hostile_text, timestamps)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4),
    max_leaves=20,
)


def dumps(value: Any) -> bytes:
    """JSON as a hostile producer writes it: NaN and Infinity allowed, surrogates escaped."""
    return json.dumps(value, allow_nan=True).encode()


def event_like() -> st.SearchStrategy[dict[str, Any]]:
    field = st.one_of(scalars, json_values)
    return st.fixed_dictionaries(
        {
            "event_id": st.one_of(st.uuids().map(str), field),
            "user_id": st.one_of(st.just("u1"), hostile_text, field),
            "episode_id": st.one_of(st.just("ep1"), field),
            "event_type": st.one_of(st.sampled_from(sorted(events.EVENT_TYPES)), field),
            "occurred_at": st.one_of(timestamps, field),
        },
        optional={
            "position_s": st.one_of(wild_numbers, field),
            "episode_duration_s": wild_numbers,
            "session_id": field,
            "locale": field,
            "device": field,
            "impression_id": st.one_of(st.uuids().map(str), field),
            "extra": json_values,
        },
    )


def impression_like() -> st.SearchStrategy[dict[str, Any]]:
    field = st.one_of(scalars, json_values)
    item = st.fixed_dictionaries(
        {
            "episode_id": st.one_of(st.just("e1"), field),
            "rank": st.one_of(st.integers(-3, 600), wild_numbers),
        },
        optional={"propensity": st.one_of(wild_numbers, field), "explored": field},
    )
    return st.fixed_dictionaries(
        {
            "impression_id": st.one_of(st.uuids().map(str), field),
            "user_id": st.one_of(st.just("u1"), hostile_text),
            "served_version": st.one_of(st.just("v1"), field),
            "experiment_id": st.one_of(st.just("x"), field),
            "bucket": st.one_of(st.integers(-1, 100), wild_numbers, field),
            "policy": st.one_of(st.just("hybrid"), field),
            "served_at": timestamps,
            "items": st.one_of(st.lists(item, max_size=5), field),
        },
        optional={"locale": field, "source": field, "model_version": field},
    )


def impression_nearly_valid() -> st.SearchStrategy[dict[str, Any]]:
    """Impressions well formed but for a hostile value here and there (propensities at and under the
    floor among them): the side of the properties where records are accepted."""
    item = st.fixed_dictionaries(
        {"episode_id": st.sampled_from(["e1", "e2", "e3"]), "rank": st.integers(0, 6)},
        optional={
            "propensity": st.one_of(st.floats(0, 1), st.sampled_from([1e-300, 0.00099, 0.001]), wild_numbers),
            "explored": st.one_of(st.booleans(), scalars),
        },
    )
    return st.fixed_dictionaries(
        {
            "impression_id": st.uuids().map(str),
            "user_id": st.sampled_from(["u1", "u2", "listener-7", "u3", "__popular__/en", "u 1", "\ud800"]),
            "served_version": st.sampled_from(["v1", "v2", "v3", "", "\ud800"]),
            "experiment_id": st.sampled_from(["x", "x-old"]),
            "bucket": st.integers(0, 99),
            "policy": st.sampled_from(["hybrid", "als_only"]),
            "served_at": st.one_of(st.just("2026-11-23T08:00:00Z"), timestamps),
            "items": st.lists(item, min_size=1, max_size=4, unique_by=lambda i: i["rank"]),
        },
        optional={"locale": st.one_of(st.just("it-IT"), hostile_text), "source": st.just("personal")},
    )


def armed(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` in its listener's arm of the configured experiment, where it has a listener id."""
    if not is_id(record.get("user_id")):
        return record
    bucket, policy = assign(record["user_id"], RULES.ab)
    return {**record, "experiment_id": RULES.ab.experiment_id, "bucket": bucket, "policy": policy}


def signed(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` signed with the key ingestion checks: what the API (or a leak of its key) writes."""
    return {**record, "signature": impressions.sign(record, RULES.key)}


def corrupted(raw: bytes) -> st.SearchStrategy[bytes]:
    """``raw`` cut short, with bytes flipped, or with invalid UTF-8 / NUL / brackets inserted."""
    at = st.integers(0, len(raw))
    junk = st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"[" * 50, b"{" * 9, b'"', b"\\"])
    return st.one_of(
        at.map(lambda i: raw[:i]),
        st.tuples(at, junk).map(lambda t: raw[: t[0]] + t[1] + raw[t[0] :]),
        st.tuples(at, st.integers(0, 255)).map(lambda t: raw[: t[0]] + bytes([t[1]]) + raw[t[0] + 1 :]),
    )


records = st.one_of(
    st.binary(max_size=300),
    json_values.map(dumps),
    event_like().map(dumps),
    impression_like().map(dumps),
    impression_like().map(armed).map(signed).map(dumps),
    event_like().map(dumps).flatmap(corrupted),
    impression_like().map(armed).map(signed).map(dumps).flatmap(corrupted),
    st.integers(1, 100_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 20_000).map(lambda n: b'{"event_id":' + b'{"a":' * n + b"1" + b"}" * n + b"}"),
    st.integers(4000, 6000).map(lambda n: b'{"position_s": 1' + b"0" * n + b"}"),
)

# --- properties --------------------------------------------------------------------------------


def answers(name: str, raw: bytes | None, limits: RecordLimits = LIMITS) -> Validated:
    """The validator's answer; counts it, and whether it raised (then re-raises: the test fails)."""
    TALLY[f"{name} ran"] += 1
    try:
        result = VALIDATORS[name](raw, RECEIVED, limits)
    except BaseException:
        TALLY[f"{name} raised"] += 1
        raise
    assert (result.event is None) != (result.error is None)
    assert result.error is None or ": " in result.error or result.error in {"empty record", "not UTF-8"}
    return result


@pytest.mark.parametrize("name", sorted(VALIDATORS))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.one_of(st.none(), records))
def test_any_bytes_are_accepted_or_rejected_with_a_reason(name: str, raw: bytes | None) -> None:
    answers(name, raw)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(record=event_like())
def test_an_accepted_event_keeps_every_rule(record: dict[str, Any]) -> None:
    result = answers("events", dumps(record))
    if result.event is not None:
        event = result.event
        assert all(is_id(event[f]) for f in ("event_id", "user_id", "episode_id"))
        assert event["impression_id"] is None or is_id(event["impression_id"])
        assert EARLIEST <= event["occurred_at"] <= RECEIVED + events.FUTURE_TOLERANCE
        assert event["occurred_at"].tzinfo == UTC
        assert all(is_text(v) for v in event.values() if isinstance(v, str))  # a UTF-8 writer takes it
        for name in events.OPTIONAL_NUMBERS:
            assert event[name] is None or 0 <= event[name] < float("inf")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    record=st.one_of(impression_like(), impression_nearly_valid()),
    arm_it=st.sampled_from([True, False]),
    sign_it=st.sampled_from([True, False]),
)
def test_an_accepted_impression_keeps_every_rule(record: dict[str, Any], arm_it: bool, sign_it: bool) -> None:
    record = armed(record) if arm_it else record
    result = answers("impressions", dumps(signed(record) if sign_it else record))
    if result.event is not None:
        TALLY["impressions accepted"] += 1
        event = result.event
        assert sign_it, "an unsigned impression was accepted"
        assert is_id(event["user_id"]) and is_id(event["impression_id"])
        if event["experiment_id"] == RULES.ab.experiment_id:
            assert (event["bucket"], event["policy"]) == assign(event["user_id"], RULES.ab)
        else:
            assert event["bucket"] == bucket(event["user_id"], event["experiment_id"])
        ranks = [item["rank"] for item in event["items"]]
        assert ranks == sorted(set(ranks)) and all(1 <= r <= impressions.MAX_ITEMS for r in ranks)
        assert all(
            i["propensity"] is None or RULES.min_propensity <= i["propensity"] <= 1 for i in event["items"]
        )


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    record=st.one_of(impression_like(), impression_nearly_valid()).map(armed),
    name=st.sampled_from([*impressions.REQUIRED_STRINGS, "bucket", "items", "locale", "signature"]),
    value=json_values,
)
def test_an_altered_impression_is_never_accepted(record: dict[str, Any], name: str, value: Any) -> None:
    genuine = signed(record)
    altered = {**genuine, name: value}
    if name == "signature":
        assume(value != genuine["signature"])
    else:
        assume(impressions.canonical(altered) != impressions.canonical(genuine))
    assert answers("impressions", dumps(altered)).event is None


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {"user_id": st.one_of(hostile_text, wild_numbers),
             "item_id": st.one_of(hostile_text, wild_numbers),
             "timestamp": st.one_of(timestamps, wild_numbers),
             "rating": st.one_of(wild_numbers, hostile_text)}
        ),
        min_size=1, max_size=20,
    )
)  # fmt: skip
def test_an_imported_log_is_split_never_raised_on(rows: list[dict[str, Any]]) -> None:
    import pandas as pd

    TALLY["import rows ran"] += len(rows)
    frame = pd.DataFrame({k: pd.Series([r[k] for r in rows], dtype=object) for k in rows[0]})
    try:
        log = check_log(frame)
    except BaseException:
        TALLY["import rows raised"] += len(rows)
        raise
    assert len(log.rows) + len(log.rejected) == len(rows)
    assert all(is_id(u) and is_id(i) for u, i in zip(log.rows["user"], log.rows["item"], strict=True))


# --- hand-picked records the issue reproduced, and the limits --------------------------------


def test_the_timestamp_that_stopped_ingestion_is_rejected() -> None:
    event = (b'{"event_id":"e","user_id":"u","episode_id":"p","event_type":"play",'
             b'"occurred_at":"9999-12-31 23:00:00-05:00"}')  # fmt: skip
    assert answers("events", event).error == "bad occurred_at: timestamp is outside years 1-9999 in UTC"
    impression = {"impression_id": "i1", "user_id": "u1", "served_version": "v", "experiment_id": "x",
                  "bucket": 1, "policy": "hybrid", "served_at": "0001-01-01T00:00:00+23:59",
                  "items": [{"episode_id": "e1", "rank": 1}]}  # fmt: skip
    assert answers("impressions", dumps(signed(armed(impression)))).error.startswith(
        "bad served_at: timestamp is outside"
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "too large"),
        (b"[" * 2000 + b"]" * 2000, "too deeply nested: more than 8 levels"),
        # Brackets inside a string do not nest (an impression is refused first for having no signature).
        (b'{"a":"' + b"[" * 50 + b'"}', {"events": "missing field(s)", "impressions": "bad signature"}),
        (b'{"position_s": 1' + b"0" * 4400 + b"}", "too large"),
        (b"\xed\xa0\x80", "not UTF-8"),
    ],
)  # fmt: skip
def test_records_that_used_to_raise_are_rejected(raw: bytes, reason: str | dict[str, str]) -> None:
    for name in VALIDATORS:
        error = answers(name, raw).error
        expected = reason if isinstance(reason, str) else reason[name]
        assert error is not None and error.startswith(expected), (name, error)


def test_a_number_of_more_digits_than_python_reads_is_rejected_not_raised() -> None:
    raw = b'{"position_s": 1' + b"0" * 5000 + b"}"
    assert answers("events", raw, RecordLimits(max_bytes=10_000)).error.startswith(
        "bad JSON: a number longer"
    )


@pytest.mark.parametrize("value", [10**400, -(10**400)])
def test_an_integer_beyond_a_double_is_out_of_range(value: int) -> None:
    record = {"event_id": "e", "user_id": "u", "episode_id": "p", "event_type": "play",
              "occurred_at": "2026-11-23T08:00:00Z", "position_s": value}  # fmt: skip
    assert answers("events", dumps(record)).error == "out of range: position_s is beyond a double"


@pytest.mark.parametrize(
    ("user_id", "reason"),
    [("__popular__/en", "reserved id: user_id"), ("__forgotten__/1", "reserved id: user_id"),
     ("../../etc", "bad id: user_id"), ("$where", "bad id: user_id"), ("u 1", "bad id: user_id"),
     ("🎧", "bad id: user_id"), ("u1\n", "bad id: user_id"), ("x" * 129, "bad id: user_id")],
)  # fmt: skip
def test_odd_and_reserved_listener_ids_are_refused(user_id: str, reason: str) -> None:
    record = {"event_id": "e", "user_id": user_id, "episode_id": "p", "event_type": "play",
              "occurred_at": "2026-11-23T08:00:00Z"}  # fmt: skip
    assert answers("events", dumps(record)).error.startswith(reason)
    impression = {"impression_id": "i1", "user_id": user_id, "served_version": "v", "experiment_id": "x",
                  "bucket": 1, "policy": "hybrid", "served_at": "2026-11-23T08:00:00Z",
                  "items": [{"episode_id": "e1", "rank": 1}]}  # fmt: skip
    assert answers("impressions", dumps(signed(impression))).error.startswith(reason)


def test_a_validator_that_raises_rejects_the_record_with_the_errors_type() -> None:
    def broken(raw: bytes | None, received_at: datetime) -> Validated:
        raise RecursionError("deep")

    assert guarded(broken, b"{}", RECEIVED) == Validated(None, "validator error: RecursionError")


def test_every_property_ran_and_none_raised() -> None:
    """Runs last in this module (pytest keeps file order): the tally of every test above."""
    print("\nvalidation totality:", dict(sorted(TALLY.items())))
    ran = {k: v for k, v in TALLY.items() if k.endswith(" ran")}
    assert ran and all(v > 0 for v in ran.values())
    assert sum(v for k, v in TALLY.items() if k.endswith(" raised")) == 0
    assert TALLY["impressions accepted"] > 0, "no impression was accepted: the rules were never tested"
