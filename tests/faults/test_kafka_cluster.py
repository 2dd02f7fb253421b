"""A three-node Kafka as ``podrec infra`` starts it for a bootstrap of three loopback addresses (KRaft
voters, topics replicated three ways, ``min.insync.replicas=2``, SASL/SCRAM on the client listener),
and one broker killed mid-ingest.
Run alone with ``pytest -m faults``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from podrec.ingest.kafka_security import client_config
from podrec.settings import PodrecSettings
from podrec_app import localinfra
from tests.conftest import make_settings
from tests.faults.conftest import kill_9, port_below_ephemeral, settings_for
from tests.faults.test_faults import accounted, ingest_until_first_commit, last_line
from tests.integration.test_ingest import bad_records, produce, simulated

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(1800)]
NODES = ["kafka-1", "kafka-2", "kafka-3"]


def three_free_ports() -> int:
    """The first of three consecutive free ports (the nodes' controllers)."""
    while True:
        base = port_below_ephemeral()
        if all(localinfra.port_free("127.0.0.1", base + i) for i in range(3)):
            return base


@pytest.fixture(scope="module")
def three_brokers(spark, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodrecSettings]:
    """Three nodes whose client listener is SASL_PLAINTEXT with a SCRAM-SHA-512 user, the password in
    the environment only (so the ingest's own process reads it there too). Depends on ``spark`` so the
    session's settings exist before the SASL variables are set; they are removed after the module."""
    brokers = ",".join(f"127.0.0.1:{port_below_ephemeral()}" for _ in NODES)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PODREC_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
        env.setenv("PODREC_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
        env.setenv("PODREC_KAFKA_SASL_USERNAME", "podrec-ingest")
        env.setenv("PODREC_KAFKA_SASL_PASSWORD", f"pw-{uuid.uuid4().hex}")
        own = make_settings(tmp_path_factory.mktemp("kafka3")).with_(
            kafka={"bootstrap": brokers, "controller_port": three_free_ports()}
        )
        try:
            started = localinfra.up(own, only=NODES)
            assert [s.name for s in started] == NODES and all(s.healthy for s in started)
            yield own
        finally:
            localinfra.down(own, only=NODES)


def test_one_broker_killed_mid_ingest_loses_and_duplicates_nothing(
    three_brokers: PodrecSettings, spark, tmp_path: Path
) -> None:
    s = settings_for(three_brokers, tmp_path, uuid.uuid4().hex[:8])
    valid = simulated(users=150)
    bad = bad_records(valid)
    n = produce(s, valid, bad)
    admin = AdminClient(client_config(s.kafka))
    (topic,) = admin.list_topics(s.kafka.events_topic, timeout=10).topics.values()
    assert {len(p.replicas) for p in topic.partitions.values()} == {3}
    (config,) = admin.describe_configs([ConfigResource("topic", s.kafka.events_topic)]).values()
    assert config.result()["min.insync.replicas"].value == "2"

    proc = ingest_until_first_commit(s, tmp_path / "ingest.log")
    kill_9(s, "kafka-2")
    # Two replicas of every partition remain, so the run itself finishes: nothing to re-run.
    assert proc.wait(timeout=900) == 0, last_line(tmp_path / "ingest.log")
    accepted, rejected, _ = accounted(spark, s, n)
    assert (accepted, rejected) == (len(valid), len(bad))
