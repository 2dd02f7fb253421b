"""How every podrec Kafka client reaches the cluster: the address and the security settings.

podrec talks to Kafka through two client libraries — librdkafka (confluent-kafka: the producer, the
consumer that tracks offsets, the lag sensor, the admin calls) and the Java client inside Spark's
Kafka source (ingestion). Both get their connection settings from here, from the same
``KafkaSettings``, so a secured cluster is reached by all of them or by none. The returned dicts
hold the SASL password: hand them to the client and nowhere else (never to a log, metadata or a
Dagster config).
"""

from __future__ import annotations

from podrec.settings import KafkaSettings

# The Java client's login module for each SASL mechanism (Spark's Kafka source needs a JAAS line).
LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def client_config(kafka: KafkaSettings) -> dict[str, str]:
    """librdkafka / confluent-kafka configuration: ``bootstrap.servers``, ``security.protocol`` and,
    with SASL, ``sasl.mechanisms``, ``sasl.username``, ``sasl.password``."""
    config = {"bootstrap.servers": kafka.bootstrap, "security.protocol": kafka.security_protocol}
    if kafka.sasl:
        user, password = _credentials(kafka)
        config |= {
            "sasl.mechanisms": str(kafka.sasl_mechanism),
            "sasl.username": user,
            "sasl.password": password,
        }
    return config


def spark_source_options(kafka: KafkaSettings) -> dict[str, str]:
    """Options of Spark's Kafka source (``kafka.``-prefixed Java client settings): the bootstrap
    servers, ``kafka.security.protocol`` and, with SASL, ``kafka.sasl.mechanism`` and a
    ``kafka.sasl.jaas.config`` line with the mechanism's login module."""
    options = {"kafka.bootstrap.servers": kafka.bootstrap, "kafka.security.protocol": kafka.security_protocol}
    if kafka.sasl:
        user, password = _credentials(kafka)
        module = LOGIN_MODULES[str(kafka.sasl_mechanism)]
        options |= {
            "kafka.sasl.mechanism": str(kafka.sasl_mechanism),
            "kafka.sasl.jaas.config": (
                f'{module} required username="{jaas_quote(user)}" password="{jaas_quote(password)}";'
            ),
        }
    return options


def _credentials(kafka: KafkaSettings) -> tuple[str, str]:
    # KafkaSettings refuses SASL without a user and password; this only narrows the types.
    if kafka.sasl_username is None or kafka.sasl_password is None:
        raise ValueError("SASL needs PODREC_KAFKA_SASL_USERNAME and PODREC_KAFKA_SASL_PASSWORD")
    return kafka.sasl_username, kafka.sasl_password.get_secret_value()


def jaas_quote(value: str) -> str:
    """A value inside a JAAS double-quoted string: the parser reads ``\\`` and ``"`` escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"')
