"""Writers of one lake at once on the cluster profile's object store: two ``podrec ingest`` and a
``podrec forget`` committing to the same bronze tables, then a Dagster run of the ingestion.

On an S3-API store a Delta commit is a put that can replace another writer's commit of the same
version, silently; podrec's commit lock (podrec/lake/commit_lock.py, in the profile's PostgreSQL) lets
one writer at a time commit to a table. Nothing may be lost: every record produced is accepted or
rejected exactly once, or was the forgotten listener's and stays deleted. Run alone with
``pytest -m faults``."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pytest
from confluent_kafka import Producer
from deltalake import DeltaTable

from podrec.ingest.kafka_security import client_config
from podrec.ingest.producer import produce_events
from podrec.lake.paths import delta_rs_uri, table_uri
from podrec.settings import PodrecSettings
from podrec_app import localinfra
from tests.faults.conftest import ClusterProfile
from tests.integration.test_ingest import bad_records, simulated

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(1800)]
# The code location's own ingestion asset, materialised in a Dagster run of its own process.
DAGSTER_INGEST = """
from dagster import AssetKey, materialize
from podrec.settings import load_settings
from podrec_assets.definitions import build_definitions
from resources import build_resources

settings = load_settings()
defs = build_definitions(settings)
materialize([defs.get_assets_def(AssetKey(["bronze", "user_events"]))], resources=build_resources(settings))
"""


def produce(settings: PodrecSettings, valid: list[dict], bad: list[tuple[bytes, str]]) -> int:
    """Send to the profile's SASL cluster as its event producer, with the minted credentials (no podrec
    process reads them here)."""
    producer = Producer({**client_config(settings.kafka, "producer"), "enable.idempotence": True})
    produce_events(producer, settings.kafka.events_topic, valid, progress=False)
    for raw, _ in bad:
        producer.produce(settings.kafka.events_topic, value=raw)
    producer.flush(60)
    return len(valid) + len(bad)


def start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    """A command in its own process, its output in ``log``; ``--debug`` logs each wait for a lock."""
    with log.open("w") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)


def podrec(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    return start(env, log, sys.executable, "-m", "podrec_app.cli", "--debug", *args)


def finished(proc: subprocess.Popen, log: Path, timeout_s: float = 900) -> None:
    assert proc.wait(timeout=timeout_s) == 0, log.read_text()[-4000:]


def table(settings: PodrecSettings, layer: str, name: str) -> DeltaTable:
    return DeltaTable(delta_rs_uri(table_uri(settings.lake.root, layer, name)))


def tally(settings: PodrecSettings, listener: str) -> dict[str, int]:
    """What bronze holds: accepted and rejected rows, duplicates (a Kafka record or an event_id landed
    twice), the listener's rows (by id, or inside a rejected record's raw bytes), and the rows of
    bronze.user_events the forget audit says were removed."""
    accepted = table(settings, "bronze", "user_events").to_pyarrow_table(
        columns=["event_id", "user_id", "kafka_partition", "kafka_offset"]
    )
    rejected = table(settings, "bronze", "user_events_rejected").to_pyarrow_table(
        columns=["raw", "kafka_partition", "kafka_offset"]  # raw, not raw_text: it may not be UTF-8
    )
    audit = table(settings, "monitoring", "forget_audit").to_pyarrow_table(columns=["target", "removed"])
    coordinates = [
        (p, o)
        for t in (accepted, rejected)
        for p, o in zip(
            t.column("kafka_partition").to_pylist(), t.column("kafka_offset").to_pylist(), strict=True
        )
    ]
    event_ids = accepted.column("event_id").to_pylist()
    in_raw = sum(1 for raw in rejected.column("raw").to_pylist() if raw and listener.encode() in raw)
    return {
        "accepted": accepted.num_rows,
        "rejected": rejected.num_rows,
        "duplicates": len(coordinates) - len(set(coordinates)) + len(event_ids) - len(set(event_ids)),
        "listener_rows": (pc.sum(pc.equal(accepted.column("user_id"), listener)).as_py() or 0) + in_raw,
        "forgotten": sum(r["removed"] for r in audit.to_pylist() if r["target"] == "bronze.user_events"),
    }


def test_two_ingests_and_a_forget_at_once_lose_no_commit(
    cluster_profile: ClusterProfile, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    s = cluster_profile.settings.with_(
        kafka={"events_topic": f"events-{tag}", "consumer_group": f"bronze-{tag}"}
    )
    localinfra.provision_kafka(s.kafka)  # the roles' ACLs name one topic and group each: this test's too
    env = cluster_profile.env | {
        "PODREC_KAFKA_EVENTS_TOPIC": s.kafka.events_topic,
        "PODREC_KAFKA_CONSUMER_GROUP": s.kafka.consumer_group,
        "PODREC_SPARK_DRIVER_MEMORY": "1g",
        "PODREC_SPARK_SHUFFLE_PARTITIONS": "2",
        # One core each, so two applications run at once on the two 1-core workers (by default the
        # first takes both, and the second would only start once it ends).
        "PODREC_SPARK_CONF": '{"spark.cores.max": "1", "spark.executor.memory": "768m"}',
    }
    valid = simulated(users=150)
    bad = bad_records(valid)  # copies and variants of the first three events
    spared = {e["user_id"] for e in valid[:3]}
    listener = Counter(e["user_id"] for e in valid if e["user_id"] not in spared).most_common(1)[0][0]
    theirs = [e for e in valid if e["user_id"] == listener]
    others = [e for e in valid if e["user_id"] != listener]
    half = len(others) // 2

    # The listener's events land first, with half the others: the forget has rows to delete.
    produced = produce(s, theirs + others[:half], [])
    finished(podrec(env, tmp_path / "ingest-0.log", "ingest"), tmp_path / "ingest-0.log")
    events = table(s, "bronze", "user_events")
    before = events.version()
    assert events.to_pyarrow_table(filters=[("user_id", "=", listener)]).num_rows == len(theirs)

    produced += produce(s, others[half:], bad)
    logs = {name: tmp_path / f"{name}.log" for name in ("ingest-1", "ingest-2", "forget")}
    began = time.monotonic()
    procs = {name: podrec(env, logs[name], "ingest") for name in ("ingest-1", "ingest-2")}
    # The forget starts as the first of them commits, so it deletes while they append.
    while events.version() == before:
        assert all(p.poll() is None for p in procs.values()), "an ingest ended before committing anything"
        assert time.monotonic() - began < 900, "no ingest committed within 15 minutes"
        time.sleep(0.1)
        events.update_incremental()
    procs["forget"] = podrec(env, logs["forget"], "forget", listener)
    for name, proc in procs.items():
        finished(proc, logs[name])
    waits = {name: logs[name].read_text().count("waiting for the commit lock") for name in procs}
    # Whatever a loser of the ingests' races left, a Dagster run of the ingestion asset finishes.
    dagster_log = tmp_path / "dagster.log"
    finished(start(env, dagster_log, sys.executable, "-c", DAGSTER_INGEST), dagster_log)

    counts = tally(s, listener)
    events.update_incremental()
    history = [
        (c["version"], c["operation"])
        for c in sorted(events.history(), key=lambda c: c["version"])
        if c["version"] > before
    ]
    print(
        f"produced {produced}: {counts}; waits for a commit lock {waits}; "
        f"bronze.user_events commits since the first ingest {history}"
    )
    assert counts["accepted"] + counts["rejected"] + counts["forgotten"] == produced
    assert counts == {
        "accepted": len(others), "rejected": len(bad), "duplicates": 0, "listener_rows": 0,
        "forgotten": len(theirs),
    }  # fmt: skip
