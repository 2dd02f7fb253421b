"""Least privilege on the cluster profile, asked of each service by a client that should be refused.

Kafka: every client logs in as its role's user, whose ACLs name its own topic or group only; a client
with no login, a wrong password, or a role's user on the controller listener is turned away. Spark: the
standalone master takes no driver without the secret of ``spark.authenticate``. SeaweedFS: its filer
and volume servers take no request without a token its own parts signed, its gRPC ports no client
without its certificate, and its S3 API no request without the key pair. And none of the profile's
secrets is in any log it wrote. Each refusal is quoted in the assertion that checks it.

All run on the session's ``cluster_profile`` (started once for every fault test); each test takes
seconds, the Spark one as long as two driver JVMs take to start. Run alone with ``pytest -m faults``."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit

import grpc
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from podrec.ingest.kafka_security import client_config
from podrec.ingest.producer import AuthenticationWatch, BrokerUnreachable, CredentialsRefused, require_broker
from podrec.settings import KafkaRole, KafkaSettings, PodrecSettings
from podrec_app import localinfra
from tests.faults.conftest import ClusterProfile

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(900)]


def write(kafka: KafkaSettings, role: KafkaRole, topic: str, idempotent: bool = True) -> KafkaError | None:
    """Produce one record as ``role``'s user: None once the brokers have it, else their refusal. A user
    with no WRITE anywhere cannot even start an idempotent producer, so ``idempotent=False`` shows its
    refusal on the topic itself."""
    outcome: list[KafkaError | None] = []
    producer = Producer(
        {**client_config(kafka, role), "enable.idempotence": idempotent, "message.timeout.ms": 30_000}
    )
    producer.produce(topic, b'{"least": "privilege"}', on_delivery=lambda error, _: outcome.append(error))
    producer.flush(60)
    assert outcome, f"{role}'s record to {topic} was neither delivered nor refused within 60s"
    return outcome[0]


def first_message_error(kafka: KafkaSettings, role: KafkaRole, group: str, topic: str) -> KafkaError | None:
    """Read ``topic`` as ``role``'s user in ``group`` until a record or an error arrives; commit the
    record's offset when one does. Returns the error, or None when the record was read and committed."""
    consumer = Consumer({**client_config(kafka, role), "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})  # fmt: skip
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(4)])  # num.partitions of the local nodes
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is None:
                continue
            if message.error() is not None:
                return message.error()
            consumer.commit(message=message, asynchronous=False)
            return None
        raise AssertionError(f"{role} read nothing from {topic} and was refused nothing within 60s")
    finally:
        consumer.close()


def broker_logs(settings: PodrecSettings) -> str:
    """The three nodes' logs (a client's request reaches whichever node it picked)."""
    return "".join(
        (settings.data.path / "kafka" / f"node-{i}" / "server.log").read_text(errors="replace")
        for i in (1, 2, 3)
    )


def test_each_kafka_user_writes_and_reads_only_what_its_role_needs(cluster_profile: ClusterProfile) -> None:
    kafka = cluster_profile.settings.kafka
    events, impressions, group = kafka.events_topic, kafka.impressions_topic, kafka.consumer_group
    assert [kafka.credential(role)[0] for role in ("producer", "api", "ingest")] == [
        "podrec-producer", "podrec-api", "podrec-ingest",
    ]  # fmt: skip

    assert write(kafka, "producer", events) is None
    assert write(kafka, "api", impressions) is None
    refused = {
        "the API's user writing events": write(kafka, "api", events),
        "the producer's user writing impressions": write(kafka, "producer", impressions),
        "ingestion's user writing events": write(kafka, "ingest", events, idempotent=False),
    }
    for who, error in refused.items():
        print(f"Kafka refused {who}: {error}")  # the closing note quotes these (pytest -rA)
        assert error is not None, f"{who} was let through"
        assert (error.code(), error.str()) == (
            KafkaError.TOPIC_AUTHORIZATION_FAILED,
            "Broker: Topic authorization failed",
        ), who

    # Ingestion reads the events and commits its group's offset; the producer's user may not read them,
    # and ingestion's user may not use any other group.
    assert first_message_error(kafka, "ingest", group, events) is None
    for role, in_group in (("producer", group), ("ingest", "not-ingestion")):
        error = first_message_error(kafka, role, in_group, events)
        print(f"Kafka refused {role}'s user reading {events} in group {in_group}: {error}")
        assert error is not None, f"{role}'s user read {events} in {in_group}"
        assert (error.code(), error.str()) == (
            KafkaError.GROUP_AUTHORIZATION_FAILED,
            "FindCoordinator response error: Group authorization failed.",
        )
    # The brokers say who was refused what, in their own log.
    logs = broker_logs(cluster_profile.settings)
    for who, operation, request in (
        ("podrec-api", "DESCRIBE", "Metadata"),
        ("podrec-ingest", "WRITE", "Produce"),
    ):
        assert (
            f"Principal = User:{who} is Denied operation = {operation} from host = 127.0.0.1 on resource = "
            f"Topic:LITERAL:{events} for request = {request}"
        ) in logs


def test_kafka_refuses_a_client_without_a_login_or_with_a_wrong_one_on_either_listener(
    cluster_profile: ClusterProfile,
) -> None:
    kafka = cluster_profile.settings.kafka
    anonymous = AdminClient({"bootstrap.servers": kafka.bootstrap, "security.protocol": "PLAINTEXT",
                             "log_level": 0})  # fmt: skip
    watch = AuthenticationWatch()
    with pytest.raises(BrokerUnreachable) as raised:
        require_broker(anonymous, kafka.bootstrap, 5.0, watch)
    assert "(Failed to get metadata: Local: Broker transport failure)" in str(raised.value)
    assert not isinstance(raised.value, CredentialsRefused)
    assert "Unexpected Kafka request of type METADATA during SASL handshake." in broker_logs(
        cluster_profile.settings
    )

    def refusal(bootstrap: str, mechanism: str, user: str, password: str) -> str:
        watch = AuthenticationWatch()
        client = AdminClient({"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
                              "sasl.mechanisms": mechanism, "sasl.username": user, "sasl.password": password,
                              "error_cb": watch, "log_level": 0})  # fmt: skip
        with pytest.raises(CredentialsRefused) as raised:
            require_broker(client, bootstrap, 5.0, watch)
        return str(raised.value)

    user, password = kafka.credential("ingest")
    wrong = refusal(kafka.bootstrap, "SCRAM-SHA-512", user, "not-the-password")
    assert (
        "SASL authentication error: Authentication failed during authentication due to invalid "
        "credentials with SASL mechanism SCRAM-SHA-512"
    ) in wrong
    # The quorum's own listener knows the brokers' user alone: a role's user, with its right password, is
    # no one there.
    controller = f"127.0.0.1:{kafka.controller_port}"
    there = refusal(controller, "PLAIN", user, password.get_secret_value())
    assert "SASL authentication error: Authentication failed: Invalid username or password" in there
    assert password.get_secret_value() not in wrong + there
    print(f"Kafka refused a client without SASL: {raised.value}\nKafka refused a wrong password: {wrong}\n"
          f"Kafka's controller listener refused the ingest user: {there}")  # fmt: skip


DRIVER = """
import sys
from pyspark.sql import SparkSession
builder = SparkSession.builder
for pair in sys.argv[1:]:
    builder = builder.config(*pair.split("=", 1))
print("counted", builder.getOrCreate().range(10).count(), flush=True)
"""


def driver_refusal(settings: PodrecSettings, *conf: str, within_s: float = 240) -> list[str]:
    """Start a driver with ``conf`` against the profile's master; its log from the first failure to
    reach the master to the cause below it (it would retry for a minute before giving up), or the
    assertion that it ran."""
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    base = [
        f"spark.master={settings.spark.master}", "spark.driver.host=127.0.0.1",
        "spark.driver.bindAddress=127.0.0.1", "spark.ui.enabled=false", "spark.driver.memory=512m",
    ]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, *base, *conf],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + within_s
    try:
        while time.monotonic() < deadline:
            if not select.select([proc.stdout], [], [], 1)[0]:
                continue
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            assert not line.startswith("counted"), "the master ran a driver that should have been refused"
            if line.startswith("Caused by:") and any("ERROR" in x or "WARN" in x for x in lines):
                return lines
        raise AssertionError("the driver was neither refused nor run:\n" + "\n".join(lines[-40:]))
    finally:
        localinfra.stop_group(proc, timeout_s=10)
        proc.stdout.close()


def test_the_spark_master_runs_no_driver_without_the_secret(cluster_profile: ClusterProfile) -> None:
    settings = cluster_profile.settings
    assert settings.spark.auth_secret is not None
    # The workers hold the secret: the master has both of them.
    status = localinfra.spark_master_status("127.0.0.1", settings.spark.ui_port) or {}
    assert [w["state"] for w in status.get("workers", [])] == ["ALIVE", "ALIVE"]

    anonymous = driver_refusal(settings)
    assert any(f"Failed to connect to master 127.0.0.1:{settings.spark.master.rsplit(':', 1)[1]}" in line
               for line in anonymous)  # fmt: skip
    assert anonymous[-1] == (
        "Caused by: java.lang.RuntimeException: java.lang.IllegalStateException: Expected SaslMessage, "
        "received something else (maybe your client does not have SASL enabled?)"
    )
    wrong = driver_refusal(settings, "spark.authenticate=true", "spark.authenticate.secret=not-the-secret")
    for who, lines in (("without spark.authenticate", anonymous), ("with a wrong secret", wrong)):
        failure = next(line for line in lines if "WARN StandaloneAppClient" in line or "ERROR" in line)
        print(f"Spark's master refused a driver {who}: {failure} ... {lines[-1]}")
    assert any("ERROR TransportClientFactory: Exception while bootstrapping client" in line for line in wrong)
    assert wrong[-1] == (
        "Caused by: javax.security.sasl.SaslException: DIGEST-MD5: digest response format violation. "
        "Mismatched response."
    )


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None):
    """(status, headers, body) of one request, error statuses included."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_the_object_store_answers_only_signed_requests_and_certified_clients(
    cluster_profile: ClusterProfile,
) -> None:
    settings = cluster_profile.settings
    store, bucket = settings.object_store, settings.lake.root.removeprefix("s3a://").split("/")[0]
    filer = f"http://127.0.0.1:{store.filer_port}/buckets/{bucket}"
    # The filer's HTTP API would read and write the lake around the S3 API and its keys.
    refused = {
        "a filer read without a token": http("GET", f"{filer}/")[::2],
        "a filer write without a token": http("PUT", f"{filer}/planted.json", b"{}")[::2],
    }
    # A volume server takes a write only with the token the master signed for that file id.
    status, headers, body = http("GET", f"http://127.0.0.1:{store.master_port}/dir/assign")
    assert status == 200, body
    assigned = json.loads(body)
    volume = f"http://{assigned['url']}/{assigned['fid']}"
    refused["a volume write without the master's token"] = http("POST", volume, b"unsigned")[::2]
    assert refused == dict.fromkeys(refused, (401, b'{"error":"wrong jwt"}'))
    assert http("POST", volume, b"signed", {"Authorization": headers["Authorization"]})[0] == 201
    # The S3 API without the key pair.
    status, _, body = http("GET", f"{settings.lake.s3_endpoint}/{bucket}/")
    assert (status, b"<Code>AccessDenied</Code>" in body) == (403, True)
    refused["an S3 request without the key pair"] = (status, body[:160])
    for who, (code, answer) in refused.items():
        print(f"SeaweedFS refused {who}: {code} {answer.decode()}")
    # Every gRPC port wants the certificate only the store's own parts hold.
    ca = (settings.data.path / "seaweedfs" / "tls" / "ca.crt").read_bytes()
    for name, port in (
        ("master", store.master_port),
        ("volume", store.volume_port),
        ("filer", store.filer_port),
    ):
        address = f"127.0.0.1:{port + 10000}"
        for channel in (grpc.insecure_channel(address),
                        grpc.secure_channel(address, grpc.ssl_channel_credentials(ca))):  # fmt: skip
            with channel, pytest.raises(grpc.RpcError) as raised:
                channel.unary_unary("/any.Service/Method")(b"", timeout=5)
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE, name
            assert raised.value.details().startswith("failed to connect to all addresses"), name
            print(f"SeaweedFS {name} gRPC refused a client: {raised.value.code()}: {raised.value.details()}")


def test_no_secret_of_the_profile_is_in_any_log_it_wrote(cluster_profile: ClusterProfile) -> None:
    """Last in the module, and after the fault tests named before it (the concurrent ingests on this
    profile), so the logs hold the refusals above and every application those ran."""
    settings = cluster_profile.settings
    secrets = {
        "PODREC_SPARK_AUTH_SECRET": settings.spark.auth_secret,
        "PODREC_IMPRESSIONS_SIGNING_KEY": settings.impressions.signing_key,
        **{f"Kafka {role or 'brokers'}": settings.kafka.credential(role)[1]
           for role in (None, "producer", "api", "ingest")},
    }  # fmt: skip
    values = {name: s.get_secret_value() for name, s in secrets.items() if s is not None}
    values["AWS_SECRET_ACCESS_KEY"] = cluster_profile.env["AWS_SECRET_ACCESS_KEY"]
    values["the serving store's password"] = unquote(
        urlsplit(settings.mongo.uri.get_secret_value()).password or ""
    )
    logs = [
        p for p in settings.data.path.rglob("*")
        if p.is_file() and (p.suffix in (".out", ".log") or p.name in ("stdout", "stderr", "server.log.1"))
    ]  # fmt: skip
    assert len(logs) >= 8  # every node, the master and workers, the store, PostgreSQL and FerretDB
    found = {
        name: [str(p) for p in logs if value in p.read_text(errors="replace")]
        for name, value in values.items()
    }
    assert {name: where for name, where in found.items() if where} == {}
