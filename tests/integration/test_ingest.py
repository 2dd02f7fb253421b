"""Kafka → bronze exactly once, on the real broker and Delta."""

import json
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from podrec.content.podcastindex import sample_snapshot
from podrec.ingest.events import encode
from podrec.ingest.kafka_to_bronze import run
from podrec.ingest.producer import produce_events
from podrec.ingest.simulator import simulate
from podrec.lake.delta import read as read_delta
from podrec.settings import PodrecSettings
from resources import build_resources
from tests.conftest import settings_env

pytestmark = pytest.mark.integration
DAYS = [date(2026, 11, 20), date(2026, 11, 21)]


def isolated(settings: PodrecSettings, tmp_path: Path) -> PodrecSettings:
    """Same services, own topic, consumer group and lake."""
    tag = uuid.uuid4().hex[:8]
    return settings.with_(
        kafka={
            "events_topic": f"events-{tag}",
            "impressions_topic": f"impressions-{tag}",
            "consumer_group": f"bronze-{tag}",
        },
        lake={"uri": str(tmp_path / "lake")},
    )


def simulated(users: int = 60) -> list[dict]:
    catalog, _ = sample_snapshot(DAYS[-1])
    return [e for _, evs in simulate(catalog, DAYS, users, epoch=DAYS[0], seed=3) for e in evs]


def bad_records(valid: list[dict]) -> list[tuple[bytes, str]]:
    """Malformed records, each with the start of the reason it must be rejected for."""
    good = valid[0]
    future = datetime.now(UTC) + timedelta(days=30)

    def variant(**changes: object) -> bytes:
        event = {**good, "event_id": str(uuid.uuid4()), **changes}
        return json.dumps({k: v for k, v in event.items() if v is not None}, default=str).encode()

    return [
        (b'{"event_id": "x", "user_id": ', "bad JSON"),
        (b"\xff\xfe not utf-8", "not UTF-8"),
        (b'["an", "array"]', "bad JSON"),
        (variant(user_id=None), "missing field(s)"),
        (variant(event_type=""), "missing field(s)"),
        (variant(user_id=12345), "wrong type"),
        (variant(position_s="ten"), "wrong type"),
        (variant(event_type="teleport"), "unknown event_type"),
        (variant(occurred_at=future.isoformat()), "occurred_at in the future"),
        (variant(occurred_at="yesterday"), "bad occurred_at"),
        (variant(occurred_at="2026-11-20T08:00:00"), "bad occurred_at"),
        (encode(valid[1]), "duplicate event_id"),
        (encode(valid[2]), "duplicate event_id"),
    ]


def produce(settings: PodrecSettings, valid: list[dict], bad: list[tuple[bytes, str]]) -> int:
    kafka = build_resources(settings)["kafka"]
    producer = kafka.producer()
    produce_events(producer, kafka.events_topic, valid, progress=False)
    for raw, _ in bad:
        producer.produce(kafka.events_topic, value=raw)
    producer.flush()
    return len(valid) + len(bad)


def run_ingest(spark, settings: PodrecSettings, day: date | None = None):
    resources = build_resources(settings)
    lake = resources["lake"]
    return run(
        spark, resources["kafka"], lake.table("bronze", "user_events"),
        lake.table("bronze", "user_events_rejected"), day,
    )  # fmt: skip


def tables(spark, settings: PodrecSettings):
    lake = build_resources(settings)["lake"]
    return (
        read_delta(spark, lake.table("bronze", "user_events")),
        read_delta(spark, lake.table("bronze", "user_events_rejected")),
    )


def test_every_record_lands_once_with_reasons(local_infra, spark, settings, tmp_path: Path) -> None:
    s = isolated(settings, tmp_path)
    valid = simulated()
    bad = bad_records(valid)
    n = produce(s, valid, bad)

    report = run_ingest(spark, s)
    accepted, rejected = tables(spark, s)
    assert report.consumed == n
    assert (report.accepted, report.rejected) == (len(valid), len(bad))
    assert accepted.count() + rejected.count() == n
    assert accepted.select("event_id").distinct().count() == accepted.count() == len(valid)
    reasons = sorted(r.error.split(":")[0] for r in rejected.collect())
    assert reasons == sorted(reason for _, reason in bad)
    coords = ["kafka_partition", "kafka_offset"]
    assert accepted.select(*coords).unionByName(rejected.select(*coords)).distinct().count() == n
    # The raw bytes of a rejected record are kept as they came.
    assert rejected.where(F.col("raw") == F.lit(b"\xff\xfe not utf-8")).count() == 1

    # Nothing new: a second run consumes nothing and writes nothing.
    again = run_ingest(spark, s)
    assert (again.consumed, again.accepted, again.rejected) == (0, 0, 0)

    # Replaying a day from Kafka rebuilds exactly the same rows for that day.
    day = DAYS[0]
    before = (
        accepted.where(F.col("event_date") == day).count(),
        rejected.where(F.col("event_date") == day).count(),
    )
    replay = run_ingest(spark, s, day=day)
    accepted, rejected = tables(spark, s)
    after = (
        accepted.where(F.col("event_date") == day).count(),
        rejected.where(F.col("event_date") == day).count(),
    )
    assert before[0] > 0 and after == before
    assert (replay.accepted, replay.rejected) == before
    assert accepted.count() + rejected.count() == n


@pytest.mark.faults  # kills an ingestion on purpose: the fault lane (make faults)
def test_sigkill_halfway_then_rerun_gives_the_same_result(
    local_infra, spark, settings, tmp_path: Path
) -> None:
    s = isolated(settings, tmp_path)
    valid = simulated(users=150)
    bad = bad_records(valid)
    n = produce(s, valid, bad)
    env = settings_env(s) | {
        "PODREC_KAFKA_EVENTS_TOPIC": s.kafka.events_topic,
        "PODREC_KAFKA_CONSUMER_GROUP": s.kafka.consumer_group,
        "PODREC_SPARK_DRIVER_MEMORY": "1g",
    }
    events_log = Path(s.lake.root) / "bronze" / "user_events" / "_delta_log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "podrec_app.cli", "ingest"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    # Halfway: the accepted rows are committed, the rejected ones not yet, offsets not committed.
    while proc.poll() is None and time.monotonic() < deadline:
        if events_log.exists() and any(events_log.glob("*.json")):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the ingestion finished before it could be killed"

    report = run_ingest(spark, s)
    accepted, rejected = tables(spark, s)
    assert report.already_ingested > 0  # the killed run's accepted rows were not written twice
    assert accepted.count() + rejected.count() == n
    assert accepted.select("event_id").distinct().count() == accepted.count() == len(valid)
    assert rejected.count() == len(bad)


def test_imported_log_lands_in_bronze_once(local_infra, spark, settings, tmp_path: Path) -> None:
    s = isolated(settings, tmp_path)
    log = tmp_path / "ratings.csv"
    log.write_text(
        "userId,movieId,rating,timestamp\n"
        + "".join(
            f"{u},{m},{(u + m) % 5 + 1}.0,{1_763_000_000 + 3600 * (u * 7 + m)}\n"
            for u in range(20)
            for m in range(6)
        )
    )
    env = settings_env(s) | {"PODREC_KAFKA_EVENTS_TOPIC": s.kafka.events_topic}
    cmd = [sys.executable, "-m", "podrec_app.cli", "import-events", str(log)]
    for _ in range(2):  # importing the same file twice must not count anything twice
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        assert "imported 120 interactions" in done.stdout
    report = run_ingest(spark, s)
    accepted, rejected = tables(spark, s)
    # Ratings 4-5 → 3 events, 1-2 → 2 events, 3 → 2 events; 48 of the 120 rows rate ≥ 4.
    expected = 120 * 2 + 48
    assert report.consumed == 2 * expected
    assert accepted.count() == expected
    assert rejected.count() == expected
    assert {r.error for r in rejected.select("error").distinct().collect()} == {
        "duplicate event_id: seen earlier in the batch"
    }
    assert accepted.where("event_type = 'like'").count() == 48
