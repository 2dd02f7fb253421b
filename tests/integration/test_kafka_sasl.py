"""Kafka with SASL, for real: a KRaft broker that requires a user and password, reached by the
producer, the ingestion's consumer, Spark's Kafka source and the Dagster asset through the same
settings — and refused, in words, with the wrong password.

The broker is podrec's own local broker (``podrec_app.localinfra``) started with the SASL settings:
its server.properties and JAAS line are written under this module's temporary folder, on free ports.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from dagster import DagsterInstance, materialize

from podrec.ingest.producer import CredentialsRefused
from podrec.settings import PodrecSettings, load_settings
from podrec_app import localinfra
from podrec_app.localinfra import free_port
from resources import build_resources
from tests.conftest import assets
from tests.integration.test_ingest import bad_records, produce, run_ingest, simulated, tables

pytestmark = pytest.mark.integration

USER = "podrec-ingest"
PASSWORD = 'sasl-"pw\\42'  # a quote and a backslash: the JAAS line must escape both


@pytest.fixture(scope="module", params=["SCRAM-SHA-512", "PLAIN"])
def sasl_settings(
    request: pytest.FixtureRequest, settings: PodrecSettings, spark, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PodrecSettings]:
    """A SASL_PLAINTEXT broker and settings that reach it, the password in the environment only.

    Depends on ``settings`` and ``spark`` so the session's own settings are made before the SASL
    variables are set (they are removed again when the module is done)."""
    mechanism = request.param
    root = tmp_path_factory.mktemp(f"sasl-{mechanism.lower()}")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PODREC_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
        env.setenv("PODREC_KAFKA_SASL_MECHANISM", mechanism)
        env.setenv("PODREC_KAFKA_SASL_USERNAME", USER)
        env.setenv("PODREC_KAFKA_SASL_PASSWORD", PASSWORD)
        own = load_settings(
            lake={"uri": str(root / "lake")},
            data={"dir": str(root / "data")},
            kafka={
                "bootstrap": f"127.0.0.1:{free_port()}",
                "controller_port": free_port(),
                "events_topic": "sasl-events",
                "consumer_group": "sasl-bronze",
            },
        )
        localinfra.up(own, only=["kafka"])
        try:
            yield own
        finally:
            localinfra.down(own, only=["kafka"])


def test_every_client_reaches_the_broker_over_sasl(sasl_settings: PodrecSettings, spark) -> None:
    s = sasl_settings
    valid = simulated(users=40)
    bad = bad_records(valid)
    n = produce(s, valid, bad)  # podrec's producer, authenticated

    report = run_ingest(spark, s)  # the consumer's offsets and Spark's Kafka source, authenticated
    accepted, rejected = tables(spark, s)
    assert report.consumed == n
    assert (report.accepted, report.rejected) == (len(valid), len(bad))
    assert (accepted.count(), rejected.count()) == (len(valid), len(bad))


def test_the_dagster_asset_ingests_over_sasl_and_never_shows_the_password(
    sasl_settings: PodrecSettings,
) -> None:
    s = sasl_settings.with_(kafka={"consumer_group": "sasl-dagster"})  # reads the topic from the start
    resources = build_resources(s)
    instance = DagsterInstance.ephemeral()
    result = materialize(assets(s, "bronze/user_events"), resources=resources, instance=instance)
    assert result.success
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "user_events"]
    assert event.materialization.metadata["consumed"].value > 0
    shown = repr(instance.all_logs(result.run_id)) + json.dumps(result.dagster_run.run_config)
    assert USER in repr(resources["kafka"]) and PASSWORD not in shown


def test_a_wrong_password_is_refused_in_words(sasl_settings: PodrecSettings) -> None:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PODREC_KAFKA_SASL_PASSWORD", "not-the-password")
        kafka = build_resources(sasl_settings)["kafka"]
        with pytest.raises(CredentialsRefused) as raised:
            kafka.producer()
    message = str(raised.value)
    assert message.startswith(f"Kafka at {sasl_settings.kafka.bootstrap} refused podrec's credentials (")
    assert "PODREC_KAFKA_SASL_PASSWORD" in message and "not-the-password" not in message
