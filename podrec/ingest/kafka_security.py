"""How every podrec Kafka client reaches the cluster: the address, the security settings, and who it is.

podrec talks to Kafka through two client libraries — librdkafka (confluent-kafka: the producer, the
consumer that tracks offsets, the lag sensor, the admin calls) and the Java client inside Spark's
Kafka source (ingestion). Both get their connection settings from here, from the same
``KafkaSettings``, so a secured cluster is reached by all of them or by none. The returned dicts
hold the SASL password: hand them to the client and nowhere else (never to a log, metadata or a
Dagster config).

Each client names its role (``KafkaRole``) and logs in as that role's user: the event producer, the
API and ingestion each have a user of their own when the settings give one (the cluster profile
does), and ``grants`` says what each may do and nothing more — the ACLs a cluster gives them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from podrec.settings import KafkaRole, KafkaSettings

# The Java client's login module for each SASL mechanism (Spark's Kafka source needs a JAAS line).
LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def client_config(kafka: KafkaSettings, role: KafkaRole | None = None) -> dict[str, str]:
    """librdkafka / confluent-kafka configuration: ``bootstrap.servers``, ``security.protocol`` and,
    with SASL, ``sasl.mechanisms``, ``sasl.username``, ``sasl.password`` — the user of ``role``
    (``None``: the default user, ``PODREC_KAFKA_SASL_USERNAME``)."""
    config = {"bootstrap.servers": kafka.bootstrap, "security.protocol": kafka.security_protocol}
    if kafka.sasl:
        user, password = kafka.credential(role)
        config |= {
            "sasl.mechanisms": str(kafka.sasl_mechanism),
            "sasl.username": user,
            "sasl.password": password.get_secret_value(),
        }
    return config


def spark_source_options(kafka: KafkaSettings, role: KafkaRole | None = None) -> dict[str, str]:
    """Options of Spark's Kafka source (``kafka.``-prefixed Java client settings): the bootstrap
    servers, ``kafka.security.protocol`` and, with SASL, ``kafka.sasl.mechanism`` and a
    ``kafka.sasl.jaas.config`` line with the mechanism's login module and ``role``'s user."""
    options = {"kafka.bootstrap.servers": kafka.bootstrap, "kafka.security.protocol": kafka.security_protocol}
    if kafka.sasl:
        user, password = kafka.credential(role)
        module = LOGIN_MODULES[str(kafka.sasl_mechanism)]
        options |= {
            "kafka.sasl.mechanism": str(kafka.sasl_mechanism),
            "kafka.sasl.jaas.config": (
                f'{module} required username="{jaas_quote(user)}" '
                f'password="{jaas_quote(password.get_secret_value())}";'
            ),
        }
    return options


def jaas_quote(value: str) -> str:
    """A value inside a JAAS double-quoted string: the parser reads ``\\`` and ``"`` escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class Grant:
    """One ACL: ``user`` may do ``operation`` on the topic or group ``name`` (that name only, no prefix).
    Kafka lets READ and WRITE imply DESCRIBE, so a role needs no more than these."""

    user: str
    resource: Literal["topic", "group"]
    name: str
    operation: Literal["READ", "WRITE", "CREATE"]


def grants(kafka: KafkaSettings) -> list[Grant]:
    """Every ACL podrec's roles need, and nothing more: the event producer writes (and may create) the
    events topic; the API writes (and may create) the impressions topic; ingestion reads both topics
    and reads and commits its consumer group's offsets. Creating is the first write to a topic of a
    cluster that creates topics on use; it gives no other topic. None without SASL (no users)."""
    if not kafka.sasl:
        return []
    producer, api, ingest = (kafka.credential(role)[0] for role in ("producer", "api", "ingest"))
    events, impressions = kafka.events_topic, kafka.impressions_topic
    return [
        Grant(producer, "topic", events, "WRITE"),
        Grant(producer, "topic", events, "CREATE"),
        Grant(api, "topic", impressions, "WRITE"),
        Grant(api, "topic", impressions, "CREATE"),
        Grant(ingest, "topic", events, "READ"),
        Grant(ingest, "topic", impressions, "READ"),
        Grant(ingest, "group", kafka.consumer_group, "READ"),
    ]
