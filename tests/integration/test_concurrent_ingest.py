"""Two ingestions of one topic and group at the same time land every record exactly once.

Races on purpose, so it belongs to the fault lane (``make faults``), on the suite's shared services."""

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from pyspark.sql import DataFrame

from podrec.ingest import kafka_to_bronze
from podrec.settings import PodrecSettings
from tests.conftest import settings_env
from tests.integration.test_ingest import bad_records, isolated, produce, run_ingest, simulated, tables

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def assert_exactly_once(
    accepted: DataFrame, rejected: DataFrame, valid: list[dict], n: int, bad: int
) -> None:
    coords = ["kafka_partition", "kafka_offset"]
    assert accepted.count() + rejected.count() == n
    assert accepted.select(*coords).distinct().count() == accepted.count()
    assert accepted.select(*coords).unionByName(rejected.select(*coords)).distinct().count() == n
    assert accepted.select("event_id").distinct().count() == accepted.count() == len(valid)
    assert rejected.count() == bad


def test_two_podrec_ingest_processes_at_once(local_infra, spark, settings, tmp_path: Path) -> None:
    """Two `podrec ingest` started together on one topic and group: neither writes what the other did."""
    s = isolated(settings, tmp_path)
    valid = simulated(users=400)
    bad = bad_records(valid)
    n = produce(s, valid, bad)
    env = settings_env(s) | {
        "PODREC_KAFKA_EVENTS_TOPIC": s.kafka.events_topic,
        "PODREC_KAFKA_CONSUMER_GROUP": s.kafka.consumer_group,
        "PODREC_SPARK_DRIVER_MEMORY": "1g",
    }
    cmd = [sys.executable, "-m", "podrec_app.cli", "ingest"]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in "ab"
    ]
    outputs = [p.communicate(timeout=480) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]

    accepted, rejected = tables(spark, s)
    assert_exactly_once(accepted, rejected, valid, n, len(bad))
    # Each row was written by exactly one of the two.
    assert sum(r["accepted"] for r in reports) == len(valid)
    assert sum(r["rejected"] for r in reports) == len(bad)


def test_a_plan_made_stale_by_a_concurrent_commit_is_made_again(
    local_infra, spark, settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forced overlap on tables that already hold events: two ingestions (own Spark sessions, one
    JVM) both plan the same range before either writes. Whichever commits second finds its plan
    stale, plans again, and adds nothing twice."""
    s = isolated(settings, tmp_path)
    valid = simulated(users=100)
    bad = bad_records(valid)  # two of them re-send events of the first half
    half = len(valid) // 2
    n = produce(s, valid[:half], [])
    run_ingest(spark, s)
    n += produce(s, valid[half:], bad)

    both_planned = threading.Barrier(2, timeout=300)
    first_write = threading.local()
    append_once = kafka_to_bronze.append_once

    def append_after_both_planned(*args, **kwargs):
        if not getattr(first_write, "done", False):
            first_write.done = True
            both_planned.wait()
        return append_once(*args, **kwargs)

    monkeypatch.setattr(kafka_to_bronze, "append_once", append_after_both_planned)
    reports, errors = [], []

    def ingest() -> None:
        try:
            reports.append(run_ingest(spark.newSession(), s))
        except BaseException as exc:  # surfaced below, with the thread's traceback
            errors.append(exc)
            both_planned.abort()

    threads = [threading.Thread(target=ingest) for _ in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors

    accepted, rejected = tables(spark, s)
    assert_exactly_once(accepted, rejected, valid, n, len(bad))
    assert sum(r.accepted for r in reports) == len(valid) - half
    assert sum(r.rejected for r in reports) == len(bad)
    assert sum(r.stale_plans for r in reports) >= 1  # the fence did turn one of them back


def test_a_topic_kafka_does_not_know_is_an_error(
    local_infra, spark, settings: PodrecSettings, tmp_path: Path
) -> None:
    """Not "nothing to ingest": a missing (or forbidden) topic fails the ingestion, saying which."""
    s = isolated(settings, tmp_path)
    with pytest.raises(KafkaException, match=s.kafka.events_topic):
        run_ingest(spark, s)
