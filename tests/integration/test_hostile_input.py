"""Crafted and careless input on the real broker, Spark and Delta: no record stops an ingestion, a
replay cannot wipe a day it can no longer read, and a forgotten listener stays forgotten."""

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient
from deltalake import DeltaTable
from pyspark.sql import functions as F

from podrec.ingest.events import encode
from podrec.ingest.kafka_security import client_config
from podrec.ingest.kafka_to_bronze import ReplayRefused, run
from podrec.lake.delta import delete_where, replace_partitions
from podrec.privacy import FORGOTTEN, Suppression, forget, user_hash
from resources import build_resources
from tests.conftest import settings_env
from tests.integration.test_ingest import DAYS, isolated, produce, run_ingest, simulated, tables

pytestmark = pytest.mark.integration


def crafted(good: dict) -> list[tuple[bytes, str]]:
    """Records that stopped ingestion or poisoned what came after it, with the reason each must get."""

    def event(**changes: object) -> bytes:
        return json.dumps({**good, "event_id": str(uuid.uuid4()), **changes}, default=str).encode()

    deep = b"[" * 100_000 + b"]" * 100_000
    return [
        (event(occurred_at="9999-12-31 23:00:00-05:00"), "bad occurred_at"),
        (event(occurred_at="9999-12-31T23:00:00-05:00"), "bad occurred_at"),
        (event(occurred_at="0001-01-01T00:00:00+23:59"), "bad occurred_at"),
        (event(occurred_at="1969-12-31T23:59:59Z"), "bad occurred_at"),
        (deep, "too large"),
        (b"[" * 20_000 + b"]" * 20_000, "too deeply nested"),
        (event(extra=json.loads("[" * 40 + "]" * 40)), "too deeply nested"),
        (b'{"event_id": "e", "position_s": 1' + b"0" * 5_000 + b"}", "bad JSON"),
        (event(position_s=10**400), "out of range"),
        (event(position_s=-(10**400)), "out of range"),
        (event(episode_duration_s=float("inf")), "wrong type"),
        (event(user_id="__popular__/en"), "reserved id"),
        (event(user_id="__forgotten__/7"), "reserved id"),
        (event(user_id="../../etc"), "bad id"),
        (event(user_id="$where"), "bad id"),
        (event(user_id="u 1"), "bad id"),
        (event(user_id="🎧"), "bad id"),
        (event(user_id="u1\n"), "bad id"),
        (event(episode_id="ep\x00"), "bad id"),
        (event(impression_id=""), "bad id"),
        (b'{"event_id": "\xed\xa0\x80"}', "not UTF-8"),
        (event(device="\ud800"), "bad text"),
        (b"\x00" * 64, "bad JSON"),
    ]


def test_crafted_records_are_rejected_and_everything_after_them_lands(
    local_infra, spark, settings, tmp_path: Path
) -> None:
    """Valid events, a few dozen crafted records, then 500 more valid events: one ingestion takes all."""
    s = isolated(settings, tmp_path)
    valid = simulated(users=150)
    assert len(valid) > 700
    before, after = valid[:-500], valid[-500:]
    bad = crafted(valid[0])
    kafka = build_resources(s)["kafka"]
    producer = kafka.producer()
    for raw in [encode(e) for e in before] + [raw for raw, _ in bad] + [encode(e) for e in after]:
        producer.produce(kafka.events_topic, value=raw)
    producer.flush()

    report = run_ingest(spark, s)
    accepted, rejected = tables(spark, s)
    n = len(valid) + len(bad)
    assert (report.consumed, report.accepted, report.rejected) == (n, len(valid), len(bad))
    assert accepted.count() == len(valid) and rejected.count() == len(bad)
    reasons = sorted(r.error.split(":")[0] for r in rejected.collect())
    assert reasons == sorted(reason for _, reason in bad), reasons
    assert "validator error" not in report.reasons  # every record was decided by a rule, not the guard
    assert run_ingest(spark, s).consumed == 0  # offsets committed: nothing waits behind them


def test_a_replay_past_the_topics_retention_is_refused_naming_what_it_would_lose(
    local_infra, spark, settings, tmp_path: Path
) -> None:
    s = isolated(settings, tmp_path)
    valid = [e for e in simulated(users=150) if e["occurred_at"].date() == DAYS[0]]
    produce(s, valid, [])
    run_ingest(spark, s)
    accepted, _ = tables(spark, s)
    day_rows = accepted.where(F.col("event_date") == DAYS[0]).count()
    # The broker's retention deletes the oldest records: the first 50 of every partition.
    admin = AdminClient(client_config(s.kafka))
    lows = {
        r.kafka_partition: 50
        for r in accepted.groupBy("kafka_partition").count().collect()
        if r["count"] > 50
    }
    gone = admin.delete_records([TopicPartition(s.kafka.events_topic, p, o) for p, o in lows.items()])
    for future in gone.values():
        future.result(timeout=30)

    with pytest.raises(ReplayRefused) as refused:
        run_ingest(spark, s, day=DAYS[0])
    lost = 50 * len(lows)
    assert f"would delete {lost} row(s)" in str(refused.value)
    assert all(f"partition {p}: 50 at offsets 0-49" in str(refused.value) for p in lows)
    assert tables(spark, s)[0].where(F.col("event_date") == DAYS[0]).count() == day_rows  # untouched

    resources = build_resources(s)
    lake = resources["lake"]
    forced = run(
        spark, resources["kafka"], lake.table("bronze", "user_events"),
        lake.table("bronze", "user_events_rejected"), DAYS[0], force_replay=True,
    )  # fmt: skip
    assert forced.accepted == day_rows - lost
    assert tables(spark, s)[0].where(F.col("event_date") == DAYS[0]).count() == day_rows - lost


def test_a_forgotten_listener_does_not_come_back(local_infra, spark, settings, tmp_path: Path) -> None:
    """Not through a late event, a re-sent one, a replay of the topic or an imported log."""
    s = isolated(settings, tmp_path)
    valid = simulated(users=30)
    user = valid[0]["user_id"]
    theirs = [e for e in valid if e["user_id"] == user]
    produce(s, valid, [])
    run_ingest(spark, s)
    resources = build_resources(s)
    db = resources["mongo"].client()[f"hostile_{uuid.uuid4().hex[:8]}"]
    try:
        forget(s.lake.root, db, user)
    finally:
        db.client.drop_database(db.name)
    suppression = Suppression(s.lake.root)
    assert user_hash(user) in suppression.hashes()

    # A late event and every one of theirs re-sent under new ids.
    late = [{**e, "event_id": str(uuid.uuid4())} for e in theirs]
    produce(s, late, [])

    def ingest(day=None):
        return run(
            spark, resources["kafka"], resources["lake"].table("bronze", "user_events"),
            resources["lake"].table("bronze", "user_events_rejected"), day, suppression=suppression,
        )  # fmt: skip

    report = ingest()
    assert (report.accepted, report.rejected) == (0, len(late))
    assert report.reasons == {FORGOTTEN: len(late)}
    accepted, rejected = tables(spark, s)
    assert accepted.where(F.col("user_id") == user).count() == 0
    kept = rejected.where(F.col("error") == FORGOTTEN)
    assert kept.count() == len(late) and kept.where(F.length("raw") > 0).count() == 0  # no bytes kept

    # A replay of every day reads their original events back off the topic: still not theirs.
    for day in DAYS:
        ingest(day)
    accepted, rejected = tables(spark, s)
    assert accepted.where(F.col("user_id") == user).count() == 0
    assert rejected.where(F.col("raw_text").contains(user)).count() == 0

    # An imported log with their rows: rejected before the topic, no text kept.
    log = tmp_path / "log.csv"
    log.write_text(f"user_id,item_id,rating,timestamp\n{user},ep1,5,1763600000\nu-other,ep1,5,1763600000\n")
    env = settings_env(s) | {"PODREC_KAFKA_EVENTS_TOPIC": s.kafka.events_topic}
    done = subprocess.run([sys.executable, "-m", "podrec_app.cli", "import-events", str(log)], env=env,
                          capture_output=True, text=True, check=False, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "imported 1 interactions" in done.stdout and f"{FORGOTTEN} 1" in done.stdout
    imported = DeltaTable(resources["lake"].table("bronze", "user_events_rejected")).to_pandas()
    assert not imported["raw_text"].fillna("").str.contains(user).any()


def test_a_write_already_under_way_when_a_listener_is_forgotten_sweeps_them_out(
    local_infra, spark, settings, tmp_path: Path
) -> None:
    """The race: a run reads the suppression list, the forget runs (and deletes), then the run writes."""
    s = isolated(settings, tmp_path)
    uri = f"{s.lake.root}/silver/user_events"
    rows = [(u, "ep1", DAYS[0]) for u in ("u-stays", "u-forgotten")]
    frame = spark.createDataFrame(rows, "user_id string, episode_id string, event_date date")
    replace_partitions(frame, uri, "event_date", [DAYS[0].isoformat()])
    suppression = Suppression(s.lake.root)

    guard = suppression.guard()  # the run, before the forget
    suppression.add("u-forgotten", datetime.now(UTC))  # the forget: suppress, then delete
    delete_where(spark, uri, F.col("user_id") == "u-forgotten")
    replace_partitions(guard.keep(frame), uri, "event_date", [DAYS[0].isoformat()])  # the run writes
    assert spark.read.format("delta").load(uri).where("user_id = 'u-forgotten'").count() == 1  # the bug

    assert guard.sweep(spark, uri) == 1
    users = {r.user_id for r in spark.read.format("delta").load(uri).collect()}
    assert users == {"u-stays"}
    assert suppression.guard().keep(frame).count() == 1  # a write that starts now leaves them out
