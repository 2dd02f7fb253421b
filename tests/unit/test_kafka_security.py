"""Kafka security: the settings, what each client library is given, and refused credentials."""

from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException

from podrec.ingest.kafka_security import Grant, client_config, grants, spark_source_options
from podrec.ingest.producer import AuthenticationWatch, BrokerUnreachable, CredentialsRefused, require_broker
from podrec.settings import KafkaSettings, SettingsError, load_settings
from podrec_app.infra.kafka import kafka_listener, kafka_users
from podrec_app.infra.supervisor import InfraError

SASL_VARIABLES = (
    "PODREC_KAFKA_SECURITY_PROTOCOL",
    "PODREC_KAFKA_SASL_MECHANISM",
    "PODREC_KAFKA_SASL_USERNAME",
    "PODREC_KAFKA_SASL_PASSWORD",
)


@pytest.fixture(autouse=True)
def no_kafka_security_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*SASL_VARIABLES, "PODREC_SECRETS_DIR", "PODREC_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)


def sasl(protocol: str = "SASL_PLAINTEXT", mechanism: str = "PLAIN", password: str = "pw") -> KafkaSettings:
    return KafkaSettings(
        bootstrap="b1:9092,b2:9092",
        security_protocol=protocol,
        sasl_mechanism=mechanism,
        sasl_username="podrec",
        sasl_password=password,
    )


def test_plaintext_is_the_default_and_adds_nothing_but_the_protocol() -> None:
    kafka = load_settings().kafka
    assert client_config(kafka) == {"bootstrap.servers": "127.0.0.1:9092", "security.protocol": "PLAINTEXT"}
    assert spark_source_options(kafka) == {
        "kafka.bootstrap.servers": "127.0.0.1:9092",
        "kafka.security.protocol": "PLAINTEXT",
    }


def test_ssl_without_sasl_sets_only_the_protocol() -> None:
    kafka = KafkaSettings(bootstrap="b1:9093", security_protocol="SSL")
    assert client_config(kafka) == {"bootstrap.servers": "b1:9093", "security.protocol": "SSL"}
    assert spark_source_options(kafka) == {
        "kafka.bootstrap.servers": "b1:9093",
        "kafka.security.protocol": "SSL",
    }


def test_sasl_plain_maps_to_librdkafka_keys_and_the_plain_login_module() -> None:
    kafka = sasl()
    assert client_config(kafka) == {
        "bootstrap.servers": "b1:9092,b2:9092",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": "podrec",
        "sasl.password": "pw",
    }
    assert spark_source_options(kafka) == {
        "kafka.bootstrap.servers": "b1:9092,b2:9092",
        "kafka.security.protocol": "SASL_PLAINTEXT",
        "kafka.sasl.mechanism": "PLAIN",
        "kafka.sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="podrec" password="pw";',
    }


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_over_ssl_uses_the_scram_login_module(mechanism: str) -> None:
    kafka = sasl("SASL_SSL", mechanism)
    assert client_config(kafka)["sasl.mechanisms"] == mechanism
    assert client_config(kafka)["security.protocol"] == "SASL_SSL"
    assert spark_source_options(kafka) == {
        "kafka.bootstrap.servers": "b1:9092,b2:9092",
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": mechanism,
        "kafka.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="podrec" password="pw";',
    }


def test_quotes_and_backslashes_in_a_password_are_escaped_for_jaas() -> None:
    jaas = spark_source_options(sasl(password='a"b\\c'))["kafka.sasl.jaas.config"]
    assert jaas.endswith('password="a\\"b\\\\c";')  # a\"b\\c inside the quotes
    assert client_config(sasl(password='a"b\\c'))["sasl.password"] == 'a"b\\c'  # librdkafka takes it raw


def test_the_variables_set_sasl_and_the_password_never_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in zip(SASL_VARIABLES, ["SASL_SSL", "SCRAM-SHA-512", "svc", "pw-9876"], strict=True):
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert (s.kafka.security_protocol, s.kafka.sasl_mechanism, s.kafka.sasl_username) == (
        "SASL_SSL", "SCRAM-SHA-512", "svc",
    )  # fmt: skip
    assert s.kafka.sasl_password.get_secret_value() == "pw-9876"
    assert "pw-9876" not in repr(s) + str(s) + str(s.public_view()) + repr(s.kafka)


def test_an_unknown_protocol_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODREC_KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(SettingsError, match="PODREC_KAFKA_SECURITY_PROTOCOL: Input should be 'PLAINTEXT'"):
        load_settings()


def test_an_unknown_mechanism_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODREC_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("PODREC_KAFKA_SASL_MECHANISM", "GSSAPI")
    with pytest.raises(SettingsError, match="PODREC_KAFKA_SASL_MECHANISM: Input should be 'PLAIN'"):
        load_settings()


def test_sasl_without_user_or_password_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODREC_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("PODREC_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("PODREC_KAFKA_SASL_USERNAME", "svc")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value) == (
        "invalid setting(s): PODREC_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs PODREC_KAFKA_SASL_PASSWORD"
    )


def test_sasl_settings_without_a_sasl_protocol_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODREC_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("PODREC_KAFKA_SASL_PASSWORD", "pw-1234")
    with pytest.raises(SettingsError, match="SECURITY_PROTOCOL=PLAINTEXT uses no SASL") as raised:
        load_settings()
    assert "pw-1234" not in str(raised.value)


def test_the_password_is_refused_in_the_settings_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "podrec.toml"
    config.write_text('[kafka]\nsecurity_protocol = "SASL_SSL"\nsasl_password = "pw-in-file"\n')
    monkeypatch.setenv("PODREC_CONFIG_FILE", str(config))
    with pytest.raises(SettingsError, match="PODREC_KAFKA_SASL_PASSWORD in the environment") as raised:
        load_settings()
    assert "pw-in-file" not in str(raised.value)


def test_the_password_comes_from_the_secrets_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "PODREC_KAFKA_SASL_PASSWORD").write_text("pw-from-file\n")
    monkeypatch.setenv("PODREC_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("PODREC_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("PODREC_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("PODREC_KAFKA_SASL_USERNAME", "svc")
    assert load_settings().kafka.sasl_password.get_secret_value() == "pw-from-file"


class RefusingClient:
    """A client whose metadata request timed out while librdkafka queued an authentication error."""

    def __init__(self, watch: AuthenticationWatch, error: KafkaError) -> None:
        self.watch, self.error = watch, error

    def list_topics(self, timeout: float) -> None:
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Failed to get metadata"))

    def poll(self, timeout: float) -> int:
        self.watch(self.error)
        return 1


def test_refused_credentials_are_told_apart_from_a_broker_that_is_away() -> None:
    watch = AuthenticationWatch()
    refused = KafkaError(
        KafkaError._AUTHENTICATION, "SASL authentication error: Invalid username or password"
    )
    with pytest.raises(CredentialsRefused) as raised:
        require_broker(RefusingClient(watch, refused), "b1:9092", 1.0, watch)
    assert str(raised.value).startswith(
        "Kafka at b1:9092 refused podrec's credentials (SASL authentication error: Invalid username or "
        "password): check PODREC_KAFKA_SASL_USERNAME"
    )
    watch = AuthenticationWatch()
    away = KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down")
    with pytest.raises(BrokerUnreachable, match="did not answer within 1s") as raised:
        require_broker(RefusingClient(watch, away), "b1:9092", 1.0, watch)
    assert not isinstance(raised.value, CredentialsRefused)


def roles(kafka: KafkaSettings) -> KafkaSettings:
    """``kafka`` with a user of its own for each role."""
    return kafka.updated(
        producer_sasl_username="podrec-producer", producer_sasl_password="p-pw",
        api_sasl_username="podrec-api", api_sasl_password="a-pw",
        ingest_sasl_username="podrec-ingest", ingest_sasl_password="i-pw",
    )  # fmt: skip


def test_the_local_broker_listens_with_the_clients_mechanism() -> None:
    lines, scram = kafka_listener(sasl(password='p"w'))
    # In a .properties file each backslash is doubled: p\"w in the JAAS line, p"w the password.
    assert lines == [
        "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "inter.broker.listener.name=SASL_PLAINTEXT",
        "sasl.enabled.mechanisms=PLAIN",
        "sasl.mechanism.inter.broker.protocol=PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain."
        'PlainLoginModule required username="podrec" password="p\\\\"w" user_podrec="p\\\\"w";',
        "sasl.mechanism.controller.protocol=PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        "listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain."
        'PlainLoginModule required username="podrec" password="p\\\\"w" user_podrec="p\\\\"w";',
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users=User:podrec",
    ]
    assert scram == []
    lines, scram = kafka_listener(sasl(mechanism="SCRAM-SHA-512"))
    assert lines[4] == (
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security."
        'scram.ScramLoginModule required username="podrec" password="pw";'
    )
    assert scram == ["--add-scram", 'SCRAM-SHA-512=[name="podrec",password="pw"]']
    assert kafka_listener(KafkaSettings()) == (
        ["listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
         "inter.broker.listener.name=PLAINTEXT"], [],
    )  # fmt: skip
    with pytest.raises(InfraError, match="PLAINTEXT or SASL_PLAINTEXT, not SASL_SSL"):
        kafka_listener(sasl("SASL_SSL"))
    with pytest.raises(InfraError, match="holds ','"):
        kafka_listener(sasl(mechanism="SCRAM-SHA-256", password="a,b"))


def test_the_roles_users_log_in_on_the_client_listener_only_and_only_the_brokers_user_is_super() -> None:
    plain, _ = kafka_listener(roles(sasl()))
    (client,) = [line for line in plain if line.startswith("listener.name.sasl_plaintext.")]
    assert client.endswith(
        'user_podrec="pw" user_podrec-producer="p-pw" user_podrec-api="a-pw" user_podrec-ingest="i-pw";'
    )
    (controller,) = [line for line in plain if line.startswith("listener.name.controller.plain.")]
    assert controller.endswith('username="podrec" password="pw" user_podrec="pw";')
    assert "super.users=User:podrec" in plain
    # SCRAM: only the brokers' own user is made with the storage; the roles' once the nodes answer.
    _, scram = kafka_listener(roles(sasl(mechanism="SCRAM-SHA-512")))
    assert scram == ["--add-scram", 'SCRAM-SHA-512=[name="podrec",password="pw"]']
    assert kafka_users(roles(sasl())) == {
        "podrec": "pw", "podrec-producer": "p-pw", "podrec-api": "a-pw", "podrec-ingest": "i-pw",
    }  # fmt: skip
    with pytest.raises(InfraError, match="podrec-api is given two passwords") as raised:
        kafka_users(roles(sasl()).updated(ingest_sasl_username="podrec-api"))
    assert "i-pw" not in str(raised.value) and "a-pw" not in str(raised.value)


def test_each_client_logs_in_as_its_roles_user_or_else_the_default_one() -> None:
    kafka = roles(sasl())
    assert client_config(kafka, "api")["sasl.username"] == "podrec-api"
    assert client_config(kafka, "api")["sasl.password"] == "a-pw"
    assert client_config(kafka, "producer")["sasl.username"] == "podrec-producer"
    assert (
        'username="podrec-ingest" password="i-pw"'
        in spark_source_options(kafka, "ingest")["kafka.sasl.jaas.config"]
    )
    assert client_config(kafka)["sasl.username"] == "podrec"  # no role: the default user
    one_user = sasl()
    assert {client_config(one_user, role)["sasl.username"] for role in ("producer", "api", "ingest")} == {
        "podrec"
    }
    assert client_config(KafkaSettings(), "api") == client_config(KafkaSettings())  # PLAINTEXT: no user


def test_a_roles_user_and_password_come_together_and_only_with_sasl(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        ValueError, match="PODREC_KAFKA_API_SASL_USERNAME set without PODREC_KAFKA_API_SASL_PASSWORD"
    ):
        sasl().updated(api_sasl_username="podrec-api")
    with pytest.raises(
        ValueError, match="PODREC_KAFKA_INGEST_SASL_PASSWORD set without PODREC_KAFKA_INGEST_SASL_"
    ):
        sasl().updated(ingest_sasl_password="i-pw")
    monkeypatch.setenv("PODREC_KAFKA_PRODUCER_SASL_USERNAME", "podrec-producer")
    monkeypatch.setenv("PODREC_KAFKA_PRODUCER_SASL_PASSWORD", "p-pw-1234")
    with pytest.raises(
        SettingsError, match="PODREC_KAFKA_PRODUCER_SASL_USERNAME, PODREC_KAFKA_PRODUCER_SASL_PASSW"
    ):
        load_settings()  # PLAINTEXT would ignore them
    for name, value in zip(SASL_VARIABLES, ["SASL_SSL", "SCRAM-SHA-512", "svc", "pw-9876"], strict=True):
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert s.kafka.credential("producer")[0] == "podrec-producer"
    assert s.kafka.credential("producer")[1].get_secret_value() == "p-pw-1234"
    assert "p-pw-1234" not in repr(s) + str(s.public_view())


def test_each_role_gets_the_acls_of_its_own_topic_or_group_and_nothing_else() -> None:
    assert grants(roles(sasl())) == [
        Grant("podrec-producer", "topic", "podrec.events", "WRITE"),
        Grant("podrec-producer", "topic", "podrec.events", "CREATE"),
        Grant("podrec-api", "topic", "podrec.impressions", "WRITE"),
        Grant("podrec-api", "topic", "podrec.impressions", "CREATE"),
        Grant("podrec-ingest", "topic", "podrec.events", "READ"),
        Grant("podrec-ingest", "topic", "podrec.impressions", "READ"),
        Grant("podrec-ingest", "group", "podrec-bronze", "READ"),
    ]
    assert grants(KafkaSettings()) == []  # PLAINTEXT: no users to grant anything to
