"""Spark's validation decides every record as ``events.validate`` does (the reference)."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from podrec.ingest.events import encode, validate
from podrec.ingest.spark_validation import TO_PYTHON, decide, decide_rest_in_python, word
from tests.integration.test_ingest import bad_records, simulated
from tests.unit.test_validation_total import records

pytestmark = pytest.mark.integration

RECEIVED = datetime(2026, 11, 23, 9, 0, 0, 123000, tzinfo=UTC)  # Kafka timestamps are milliseconds
GOOD = {
    "event_id": "e1", "user_id": "u1", "episode_id": "ep1", "event_type": "progress",
    "occurred_at": "2026-11-23T08:15:00Z", "position_s": 120, "episode_duration_s": 1800.5,
    "session_id": "s1", "locale": "it-IT", "device": "ios",
}  # fmt: skip
JVM, PYTHON = "jvm", "python"


def rec(**changes: object) -> bytes:
    """GOOD with changes; a change to None drops the field."""
    event = {**GOOD, "event_id": str(uuid.uuid4()), **changes}
    return json.dumps({k: v for k, v in event.items() if v is not None}, ensure_ascii=False).encode()


def text(body: str) -> bytes:
    """A record written by hand, for what json.dumps cannot write (NaN as a value is fine)."""
    return body.encode()


def cases() -> list[tuple[bytes | None, str]]:
    """(record, the lane expected to decide it): the integration test's bad records and edge cases."""
    valid = simulated(users=5)
    # Python words a parser's complaint and an unparsable timestamp itself.
    in_python = {"bad JSON": lambda raw: raw.startswith(b"{"), "bad occurred_at": lambda raw: True}
    ingest_bad = [
        (raw, PYTHON if in_python.get(reason, lambda raw: False)(raw) else JVM)
        for raw, reason in bad_records(valid)
    ]
    future = RECEIVED + timedelta(minutes=10)
    iso = future.isoformat().replace("+00:00", "Z")
    return [
        *[(encode(e), JVM) for e in valid[:20]],
        *ingest_bad,
        (rec(), JVM),
        # numbers as strings, booleans, NaN and infinities, big and odd numbers
        (rec(position_s="10"), JVM),
        (rec(episode_duration_s="1800"), JVM),
        (rec(position_s=True), JVM),
        (rec(user_id=True), JVM),
        (rec(user_id=False), JVM),
        (rec(position_s=float("nan")), PYTHON),
        (rec(position_s=float("inf")), PYTHON),
        (rec(episode_duration_s=float("-inf")), PYTHON),
        (rec(extra=float("nan")), PYTHON),
        # beyond a double: Python tells an integer from a float that overflowed, so it decides
        (text(rec(position_s=None)[:-1].decode() + ', "position_s": 1e400}'), PYTHON),
        (text(rec(position_s=None)[:-1].decode() + ', "position_s": 1' + "0" * 400 + "}"), PYTHON),
        (text(rec(position_s=None)[:-1].decode() + ', "position_s": -1' + "0" * 400 + "}"), PYTHON),
        (text(rec(position_s=None)[:-1].decode() + ', "position_s": 123456789012345678901234567890}'), JVM),
        (rec(position_s=0), JVM),
        (rec(position_s=1.5e3), JVM),
        (text(rec(position_s=None)[:-1].decode() + ', "position_s": -0.0}'), JVM),
        (text(rec(position_s=None)[:-1].decode() + ', "position_s": 5.0}'), JVM),
        # negative positions, and the order of the number checks
        (rec(position_s=-1), JVM),
        (rec(position_s=-0.001), JVM),
        (rec(episode_duration_s=-5), JVM),
        (rec(position_s=-1, episode_duration_s="x"), JVM),
        (rec(position_s=[1]), JVM),
        (rec(position_s={"s": 1}), JVM),
        # strings of the wrong type, in validate's order; values Python types from the parsed form
        (rec(user_id=12345), JVM),
        (rec(user_id=1.5), JVM),
        (text(rec(user_id=None)[:-1].decode() + ', "user_id": 5.0}'), JVM),
        (text(rec(user_id=None)[:-1].decode() + ', "user_id": 12345678901234567890}'), PYTHON),
        (text(rec(user_id=None)[:-1].decode() + ', "user_id": 12345678901234567890.0}'), PYTHON),
        (text(rec(user_id=None)[:-1].decode() + ', "user_id": 1' + "0" * 400 + "}"), PYTHON),
        (text(rec(user_id=None)[:-1].decode() + ', "user_id": 1e300}'), JVM),
        (b"1" + b"0" * 400, PYTHON),
        (rec(event_type="u1\n"), PYTHON),
        (rec(user_id=["u"]), JVM),
        (rec(user_id={"id": "u"}), JVM),
        (rec(episode_id=7, user_id=8), JVM),
        (rec(session_id=5), JVM),
        (rec(locale=["it"]), JVM),
        (rec(device=False, session_id=1), JVM),
        # over-long ids: characters, not bytes
        (rec(user_id="u" * 200), JVM),
        (rec(user_id="u" * 201), JVM),
        (rec(user_id="é" * 200), JVM),
        (rec(user_id="😀" * 201), JVM),
        (rec(device="d" * 201), JVM),
        (rec(event_id="e" * 201, user_id=5), JVM),
        # the id rule, and podrec's own prefixes
        (rec(user_id="__popular__/en"), JVM),
        (rec(user_id="__forgotten__/3"), JVM),
        (rec(user_id="../../etc"), JVM),
        (rec(user_id="$where"), JVM),
        (rec(user_id="u 1"), JVM),
        (rec(user_id="u1\n"), JVM),
        (rec(user_id="x" * 128), JVM),
        (rec(user_id="x" * 129), JVM),
        (rec(user_id="-u"), JVM),
        (rec(user_id="u1@x.org", episode_id="ml:123", event_id="a.b_c-d"), JVM),
        (rec(episode_id="ep/1"), JVM),
        (rec(impression_id=""), JVM),
        (rec(impression_id="6f1d5f7e-2c1a-4c36-9a57-0d6b3f0f2a11"), JVM),
        (rec(event_id="__popular__/x", user_id="$"), JVM),
        # the size and nesting limits, and text no UTF-8 writer takes
        (rec(extra="x" * 70_000), JVM),
        (b"[" * 30 + b"]" * 30, PYTHON),
        (rec(extra=json.loads("[" * 17 + "]" * 17)), PYTHON),
        (rec(extra=json.loads("[" * 15 + "]" * 15)), JVM),
        (rec(device="[[[[[[[[[[[[[[[[[[[[{{{{{"), PYTHON),
        (text(rec(device=None)[:-1].decode() + ', "device": "\\ud800"}'), PYTHON),
        # empty values and missing fields
        (rec(user_id=""), JVM),
        (rec(event_id="", episode_id=None, occurred_at=""), JVM),
        (
            text(
                '{"user_id": null, "event_id": "x", "episode_id": "e", "event_type": "play", '
                '"occurred_at": "2026-11-23T08:15:00Z"}'
            ),
            JVM,
        ),
        (rec(session_id="", locale="", device=""), JVM),
        (rec(session_id=None, locale=None, device=None, position_s=None, episode_duration_s=None), JVM),
        (text("{}"), JVM),
        (b"", PYTHON),
        (b"   ", PYTHON),
        (None, JVM),
        # event types
        (rec(event_type="PLAY"), JVM),
        (rec(event_type="it's"), JVM),
        (rec(event_type='say "hi"'), JVM),
        (rec(event_type="both ' and \""), JVM),
        (rec(event_type="back\\slash"), JVM),
        (rec(event_type="x" * 60), JVM),
        (rec(event_type="ünïcode"), PYTHON),
        (rec(event_type="tab\there"), PYTHON),
        (rec(event_type=5), JVM),
        # timestamps: offsets, precision, naive, unparsable, the future
        (rec(occurred_at="2026-11-23T10:15:00+02:00"), JVM),
        (rec(occurred_at="2026-11-23T03:15:00-05:00"), JVM),
        (rec(occurred_at="2026-11-23T08:15:00z"), PYTHON),
        (rec(occurred_at="2026-11-23T08:15:00.5Z"), JVM),
        (rec(occurred_at="2026-11-23T08:15:00.123456+00:00"), JVM),
        (rec(occurred_at="2026-11-23T08:15:00.1234567Z"), PYTHON),
        (rec(occurred_at="2026-11-22T23:30:00-01:00"), JVM),
        (rec(occurred_at="2026-11-23T08:15:00"), PYTHON),
        (rec(occurred_at="2026-11-23 08:15:00Z"), PYTHON),
        (rec(occurred_at="2026-11-23"), PYTHON),
        (rec(occurred_at="2026-02-30T08:15:00Z"), PYTHON),
        (rec(occurred_at="2026-11-23T24:00:00Z"), PYTHON),
        (rec(occurred_at="2026-11-23T08:15:00+05:99"), PYTHON),
        (rec(occurred_at="2026-11-23T08:15:00+19:00"), PYTHON),
        (rec(occurred_at="0999-11-23T08:15:00Z"), PYTHON),
        (rec(occurred_at="yesterday"), PYTHON),
        (rec(occurred_at=1763885700), JVM),
        (rec(occurred_at=iso), JVM),
        (rec(occurred_at=(future + timedelta(microseconds=1)).isoformat()), JVM),
        (rec(occurred_at="2026-11-23T09:10:00.123001Z"), JVM),
        (rec(occurred_at="2027-01-01T00:00:00+01:00"), JVM),
        (rec(occurred_at="1999-12-31T23:59:59.999999Z"), JVM),
        (rec(occurred_at="9999-12-31T23:00:00-05:00"), PYTHON),
        (rec(occurred_at="9999-12-31 23:00:00-05:00"), PYTHON),
        (rec(occurred_at="1969-12-31T23:59:59Z"), PYTHON),
        (rec(occurred_at="1970-01-01T00:00:00Z"), JVM),
        # JSON the two parsers read differently, and what is not an object
        (rec()[:-1] + b"} trailing", PYTHON),
        (rec() + b"]", PYTHON),
        (rec() + b",0]", PYTHON),
        (rec() + b"\n\t ", JVM),
        (b"\t " + rec(), JVM),
        (rec() + rec(), PYTHON),
        (text('{"event_id": "a", "event_id": "b"}'), PYTHON),
        (text("{'event_id': 'x'}"), PYTHON),
        (b"\xef\xbb\xbf" + rec(), PYTHON),
        (rec()[:-1] + b', "extra": "a\x01b"}', PYTHON),
        (rec()[:-1] + b", /* comment */ }", PYTHON),
        (text('{"EVENT_ID": "x", "user_id": "u"}'), JVM),
        (text('{"event\\u005fid": "x"}'), JVM),
        (rec(user_id="\\u00e9"), JVM),
        (json.dumps({**GOOD, "user_id": "é😀"}).encode(), JVM),
        (rec(extra={"nested": [1, {"deep": None}]}), JVM),
        (b"[1, 2]", JVM),
        (b"42", JVM),
        (b"1.5", JVM),
        (b"5.0", JVM),
        (b"99999999999999999999", PYTHON),
        (b'"a string"', JVM),
        (b"true", JVM),
        (b"null", JVM),
        (b"NaN", PYTHON),
        # bytes that are not UTF-8
        (b"\xff\xfe", JVM),
        (b'{"event_id": "\xc3"}', JVM),
        (b"\xed\xa0\x80", JVM),
        (b"\xc0\x80", JVM),
        (b"\xf4\x90\x80\x80", JVM),
        (rec()[:-1] + b', "x": "\xe2\x82"}', JVM),
    ]


def prefix(reason: str | None) -> str | None:
    return None if reason is None else reason.split(":")[0]


def test_spark_and_validate_decide_every_record_alike(spark) -> None:
    records = cases()
    df = spark.createDataFrame(
        [(raw, 0, i, RECEIVED) for i, (raw, _) in enumerate(records)],
        "value binary, partition int, offset long, timestamp timestamp",
    )
    decided = decide(df).cache()
    lanes = {r.kafka_offset: PYTHON if r.error == TO_PYTHON else JVM for r in decided.collect()}
    rows = {
        r.kafka_offset: r
        for r in word(decide_rest_in_python(decided))
        .withColumn("occurred_us", F.unix_micros("occurred_at"))
        .withColumn("event_date", F.col("event_date").cast("string"))
        .collect()
    }
    decided.unpersist()
    assert len(rows) == len(records)
    for i, (raw, lane) in enumerate(records):
        expected = validate(raw, RECEIVED)
        row = rows[i]
        assert (row.error is None, prefix(row.error)) == (expected.error is None, prefix(expected.error)), (
            raw,
            row.error,
            expected.error,
        )
        assert lanes[i] == lane, (raw, row.error)
        if lane == JVM:  # what Spark decides itself it words exactly as validate does
            assert row.error == expected.error, raw
        if expected.event is not None:
            event = expected.event
            for name in ("event_id", "user_id", "episode_id", "event_type", "session_id", "locale", "device"):
                assert getattr(row, name) == event[name], (raw, name)
            for name in ("position_s", "episode_duration_s"):
                assert getattr(row, name) == event[name], (raw, name)
            occurred = event["occurred_at"]
            assert row.occurred_us == (occurred - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
                microseconds=1
            )
            assert row.event_date == occurred.date().isoformat()
        else:
            assert row.event_date == RECEIVED.date().isoformat()
            assert (None if row.raw is None else bytes(row.raw)) == raw


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(st.one_of(st.none(), records), min_size=150, max_size=150))
def test_spark_and_validate_agree_on_any_batch(spark, batch: list[bytes | None]) -> None:
    """Property: for generated records of any shape, Spark's decision and wording are validate's."""
    df = spark.createDataFrame(
        [(raw, 0, i, RECEIVED) for i, raw in enumerate(batch)],
        "value binary, partition int, offset long, timestamp timestamp",
    )
    decided = decide(df).cache()
    rows = {r.kafka_offset: r for r in word(decide_rest_in_python(decided)).collect()}
    decided.unpersist()
    assert len(rows) == len(batch)
    for i, raw in enumerate(batch):
        expected = validate(raw, RECEIVED)
        assert rows[i].error == expected.error, (raw[:200] if raw else raw, rows[i].error, expected.error)
        if expected.event is not None:
            assert rows[i].user_id == expected.event["user_id"]
