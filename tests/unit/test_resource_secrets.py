"""No secret is ever a Dagster resource's config: resources read them from the settings when used."""

import json

import pytest

from podrec.settings import load_settings
from podrec_assets.definitions import build_definitions
from resources import PodcastIndexResource, build_resources

SECRETS = {
    "PODREC_MONGO_URI": "mongodb://podrec:hunter2-pw@db.example:27017/?authSource=admin",
    "PODREC_PODCASTINDEX_API_KEY": "KEY-abc123",
    "PODREC_PODCASTINDEX_API_SECRET": "SECRET-xyz789",
    "PODREC_KAFKA_SASL_PASSWORD": "kafka-pw-456",
    "PODREC_KAFKA_INGEST_SASL_PASSWORD": "ingest-pw-789",
    "PODREC_SPARK_AUTH_SECRET": "spark-secret-321",
}
KAFKA_SASL = {
    "PODREC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "PODREC_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "PODREC_KAFKA_SASL_USERNAME": "podrec-svc",
    "PODREC_KAFKA_INGEST_SASL_USERNAME": "podrec-ingest-svc",
}
SHOWN_NEVER = (
    "hunter2-pw",
    "KEY-abc123",
    "SECRET-xyz789",
    "kafka-pw-456",
    "ingest-pw-789",
    "spark-secret-321",
)


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**SECRETS, **KAFKA_SASL}.items():
        monkeypatch.setenv(name, value)


def test_resource_config_holds_no_secret_and_the_secret_is_read_when_used(secret_env) -> None:
    resources = build_resources(load_settings())
    shown = json.dumps({name: r.model_dump() for name, r in resources.items()}, default=str)
    for secret in SHOWN_NEVER:
        assert secret not in shown
        assert all(secret not in repr(r) for r in resources.values())
    mongo = resources["mongo"]
    assert (mongo.uri, mongo.credentials) == ("mongodb://db.example:27017/?authSource=admin", True)
    assert mongo.connection_uri() == SECRETS["PODREC_MONGO_URI"]
    source = resources["episode_source"]
    assert isinstance(source, PodcastIndexResource)
    client = source.client()
    assert (client.api_key, client.api_secret) == ("KEY-abc123", "SECRET-xyz789")
    kafka = resources["kafka"]
    assert (kafka.security_protocol, kafka.sasl_mechanism, kafka.sasl_username) == (
        "SASL_SSL", "SCRAM-SHA-512", "podrec-svc",
    )  # fmt: skip
    assert kafka.connection().sasl_password.get_secret_value() == "kafka-pw-456"
    # Ingestion logs in as its own user; the producer, which has none here, as the default one.
    assert kafka.ingest_sasl_username == "podrec-ingest-svc"
    assert kafka.connection("ingest").sasl_password.get_secret_value() == "ingest-pw-789"
    assert (
        'username="podrec-ingest-svc" password="ingest-pw-789"'
        in kafka.spark_source_options()["kafka.sasl.jaas.config"]
    )
    assert kafka.connection("producer").sasl_username == "podrec-svc"
    assert resources["spark"].spark_config["spark.authenticate"] == "true"  # its secret comes at start


def test_the_definitions_dagster_loads_hold_no_secret(secret_env) -> None:
    repository = build_definitions(load_settings()).get_repository_def()
    snapshots = [job.get_job_snapshot() for job in repository.get_all_jobs()]
    shown = repr([s.config_schema_snapshot for s in snapshots])
    assert "mongodb://db.example:27017/" in shown  # the resources' config is in there, without secrets
    assert "podrec-svc" in shown
    for secret in SHOWN_NEVER:
        assert secret not in shown


def test_credentials_set_only_in_code_are_refused_when_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODREC_MONGO_URI", raising=False)
    mongo = build_resources(load_settings(mongo={"uri": "mongodb://u:pw@db.example:1/"}))["mongo"]
    assert "pw" not in json.dumps(mongo.model_dump())
    with pytest.raises(RuntimeError, match=r"PODREC_MONGO_URI now points at mongodb://127\.0\.0\.1"):
        mongo.connection_uri()


def test_kafka_clients_refuse_settings_changed_since_loading(secret_env, monkeypatch) -> None:
    kafka = build_resources(load_settings())["kafka"]
    monkeypatch.setenv("PODREC_KAFKA_SASL_USERNAME", "someone-else")
    with pytest.raises(RuntimeError, match="reload it") as raised:
        kafka.connection()
    assert "kafka-pw-456" not in str(raised.value)


def test_the_spark_session_is_given_its_secret_only_as_it_starts(secret_env, monkeypatch) -> None:
    import resources.spark

    started: list[dict] = []
    monkeypatch.setattr(
        resources.spark, "spark_session_from_config", lambda conf: started.append(conf) or "s"
    )
    spark = build_resources(load_settings())["spark"]
    assert "spark-secret-321" not in json.dumps(spark.model_dump())
    assert spark.spark_session == "s"
    assert started[0]["spark.authenticate.secret"] == "spark-secret-321"
