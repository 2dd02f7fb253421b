"""Faults on purpose, against real services of the suite's own (tests/faults/conftest.py): the broker
killed mid-ingest, two ingests at once, the serving store killed mid-publish, the lake's disk full, and
a flood of malformed records. Each test prints its counts; run alone with ``pytest -m faults``."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from pymongo.errors import PyMongoError

from podrec.ingest.events import encode
from podrec.serving.publish import PUBLISHES, active_version, collection, publish
from resources import build_resources
from tests.conftest import settings_env
from tests.faults.conftest import kill_9, restart, settings_for
from tests.integration.test_ingest import bad_records, produce, run_ingest, simulated, tables
from tests.integration.test_publish import episodes, lists, similar

# Several Spark processes per test on shared cores: a hang guard, not a time limit on the behaviour.
pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(1800)]


def cli_env(s) -> dict[str, str]:
    return settings_env(s) | {
        "PODREC_KAFKA_EVENTS_TOPIC": s.kafka.events_topic,
        "PODREC_KAFKA_CONSUMER_GROUP": s.kafka.consumer_group,
        "PODREC_SPARK_DRIVER_MEMORY": "1g",
        "PODREC_SPARK_SHUFFLE_PARTITIONS": "2",
    }


def ingest_cli(s, log: Path) -> subprocess.Popen:
    """``podrec ingest`` in its own process, its output in ``log`` (a pipe could fill and stall it)."""
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "podrec_app.cli", "ingest"], env=cli_env(s),
                                stdout=out, stderr=out, text=True)  # fmt: skip


def ingest_until_first_commit(s, log: Path) -> subprocess.Popen:
    """``podrec ingest`` started and caught mid-run: it has read the range and committed its first table
    (the accepted rows), not yet the rejected ones nor its offsets — the moment to break a service."""
    accepted_log = Path(s.lake.root) / "bronze" / "user_events" / "_delta_log"
    proc = ingest_cli(s, log)
    while proc.poll() is None and not any(accepted_log.glob("*.json")):
        time.sleep(0.02)
    assert proc.poll() is None, "the ingestion finished before a service could be broken"
    return proc


def last_line(log: Path) -> str:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def accounted(spark, s, produced: int) -> tuple[int, int, int]:
    """(accepted, rejected, duplicated rows) after ingestion; asserts every record landed exactly once."""
    accepted, rejected = tables(spark, s)
    n_accepted, n_rejected = accepted.count(), rejected.count()
    coords = ["kafka_partition", "kafka_offset"]
    both = accepted.select(*coords).unionByName(rejected.select(*coords))
    duplicated = both.count() - both.distinct().count()
    duplicated += n_accepted - accepted.select("event_id").distinct().count()
    print(f"produced {produced}: accepted {n_accepted} + rejected {n_rejected} = {n_accepted + n_rejected}, "
          f"duplicates {duplicated}")  # fmt: skip
    assert n_accepted + n_rejected == produced and duplicated == 0
    return n_accepted, n_rejected, duplicated


def test_broker_killed_and_restarted_during_an_ingest(fault_settings, spark, tmp_path: Path) -> None:
    s = settings_for(fault_settings, tmp_path, uuid.uuid4().hex[:8])
    valid = simulated(users=150)
    bad = bad_records(valid)
    n = produce(s, valid, bad)
    proc = ingest_until_first_commit(s, tmp_path / "ingest.log")
    kill_9(s, "kafka")
    restart(s, "kafka")
    proc.wait(timeout=600)
    print(f"the interrupted ingest exited {proc.returncode}: {last_line(tmp_path / 'ingest.log')}")
    again = run_ingest(spark, s)
    print(f"re-run: consumed {again.consumed}, already ingested {again.already_ingested}")
    accepted, rejected, _ = accounted(spark, s, n)
    assert (accepted, rejected) == (len(valid), len(bad))


def test_two_ingests_at_once_write_nothing_twice(fault_settings, spark, tmp_path: Path) -> None:
    s = settings_for(fault_settings, tmp_path, uuid.uuid4().hex[:8])
    valid = simulated(users=100)
    half = len(valid) // 2
    produce(s, valid[:half], [])
    run_ingest(spark, s)  # the tables exist, as after any first day (else they race to create them)
    n = half + produce(s, valid[half:], [])
    first, second = ingest_cli(s, tmp_path / "first.log"), ingest_cli(s, tmp_path / "second.log")
    codes = [p.wait(timeout=900) for p in (first, second)]
    print(f"exit codes {codes}")
    run_ingest(spark, s)  # whatever a loser left, a third run finishes
    accepted, _, _ = accounted(spark, s, n)
    assert accepted == len(valid)


def test_serving_store_killed_during_a_publish(fault_settings) -> None:
    db = build_resources(fault_settings)["mongo"].client()[f"faults_{uuid.uuid4().hex[:8]}"]
    first = publish(db, "2026-11-20", lists(300, "m1"), similar(), episodes(), k=10,
                    version="v20261120T000000Z-1")  # fmt: skip
    assert first["passed"] and active_version(db) == "v20261120T000000Z-1"
    killed = threading.Event()

    def lists_then_kill():
        for i, doc in enumerate(lists(6000, "m2")):
            if i == 3000:  # half-way through staging, the store dies
                kill_9(fault_settings, "ferretdb")
                killed.set()
            yield doc

    with pytest.raises(PyMongoError) as failure:
        publish(db, "2026-11-21", lists_then_kill(), similar(), episodes(), k=10,
                version="v20261121T000000Z-2", batch_size=500)  # fmt: skip
    assert killed.is_set()
    print(f"the publish failed with {type(failure.value).__name__}")
    restart(fault_settings, "ferretdb")
    assert active_version(db) == "v20261120T000000Z-1"  # still serving the first version, whole
    served = db[collection("recommendations", "v20261120T000000Z-1")]
    assert served.count_documents({}) == 301 and served.find_one({"_id": "u7"})["model_version"] == "m1"
    record = db[PUBLISHES].find_one({"_id": "v20261121T000000Z-2"})
    assert record["status"] == "staging" and "gate" not in record  # never gated, never served
    staged = db[collection("recommendations", "v20261121T000000Z-2")].count_documents({})
    nxt = publish(
        db, "2026-11-22", lists(400, "m3"), similar(), episodes(), k=10, version="v20261122T000000Z-3"
    )
    print(
        f"served 301 lists throughout; the killed version had {staged} staged; the next publish "
        f"{'passed' if nxt['passed'] else 'failed'} with {nxt['counts']['recommendations']} lists"
    )
    assert nxt["passed"] and active_version(db) == "v20261122T000000Z-3"
    db.client.drop_database(db.name)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 16 MB tmpfs for the lake; skipped (saying why) where mounting is refused."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}): needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte; the filler's path, to free it again."""
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * (1 << 16))
                out.flush()
        except OSError:
            pass
    return filler


def test_the_lakes_disk_full_during_a_write(fault_settings, spark, small_disk: Path, tmp_path: Path) -> None:
    from deltalake import DeltaTable

    s = settings_for(fault_settings, small_disk, uuid.uuid4().hex[:8])
    events = simulated(users=60)
    half = len(events) // 2
    produce(s, events[:half], [])
    first = ingest_cli(s, tmp_path / "first.log")
    assert first.wait(timeout=600) == 0, (tmp_path / "first.log").read_text()
    uri = f"{s.lake.root}/bronze/user_events"
    version, rows = DeltaTable(uri).version(), DeltaTable(uri).to_pyarrow_table().num_rows
    filler = fill(small_disk)
    produce(s, events[half:], [])
    full = ingest_cli(s, tmp_path / "full.log")
    full.wait(timeout=600)
    last = last_line(tmp_path / "full.log")
    print(f"disk full: exit {full.returncode}: {last}")
    assert full.returncode != 0 and "Traceback" not in (tmp_path / "full.log").read_text()
    assert last.startswith("Error: podrec ingest failed: the disk is full"), last
    table = DeltaTable(uri)  # the last version is intact and readable
    assert (table.version(), table.to_pyarrow_table().num_rows) == (version, rows)
    filler.unlink()
    run_ingest(spark, s)  # with room again, the next run lands the rest, once
    accepted, rejected, _ = accounted(spark, s, len(events))
    assert (accepted, rejected) == (len(events), 0)


def malformed(valid: list[dict], count: int) -> list[bytes]:
    """``count`` distinct malformed records of every kind the wire format refuses."""
    kinds = [
        lambda i: f'{{"event_id": "bad-{i}", "user_id": '.encode(),
        lambda i: b"\xff\xfe" + str(i).encode(),
        lambda i: json.dumps(["an", "array", i]).encode(),
        lambda i: encode({**valid[i % len(valid)], "event_id": f"m-{i}", "user_id": None}),
        lambda i: encode({**valid[i % len(valid)], "event_id": f"m-{i}", "user_id": i}),
        lambda i: encode({**valid[i % len(valid)], "event_id": f"m-{i}", "event_type": "teleport"}),
        lambda i: encode({**valid[i % len(valid)], "event_id": f"m-{i}", "occurred_at": f"day {i}"}),
        lambda i: encode({**valid[i % len(valid)], "event_id": f"m-{i}", "position_s": -1.0 - i}),
        lambda i: encode(valid[i % len(valid)]),  # a duplicate of a valid event
    ]
    return [kinds[i % len(kinds)](i) for i in range(count)]


def test_ten_thousand_malformed_among_ten_thousand_valid(fault_settings, spark, tmp_path: Path) -> None:
    s = settings_for(fault_settings, tmp_path, uuid.uuid4().hex[:8])
    valid = simulated(users=1000)[:10_000]
    assert len(valid) == 10_000
    bad = malformed(valid, 10_000)
    records = [encode(e) for e in valid] + bad
    random.Random(7).shuffle(records)
    kafka = build_resources(s)["kafka"]
    producer = kafka.producer()
    for raw in records:
        while True:
            try:
                producer.produce(kafka.events_topic, value=raw)
                break
            except BufferError:
                producer.poll(0.5)
    assert producer.flush(60) == 0
    report = run_ingest(spark, s)
    accepted, rejected, _ = accounted(spark, s, len(records))
    reasons = Counter(r.error.split(":")[0] for r in tables(spark, s)[1].select("error").collect())
    print(f"reasons: {dict(reasons)}")
    assert (accepted, rejected) == (10_000, 10_000) == (report.accepted, report.rejected)
    assert sum(reasons.values()) == 10_000 and len(reasons) >= 6
