"""Kafka clients for podrec's topics (confluent-kafka, i.e. librdkafka)."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from dagster import ConfigurableResource

from podrec.ingest.kafka_security import client_config, spark_source_options
from podrec.ingest.producer import AuthenticationWatch, require_broker
from podrec.settings import KafkaRole, KafkaSettings, load_settings

# librdkafka's own log lines (a refused connection every second while a broker is away) go through
# this logger instead of straight to stderr, so whoever runs podrec decides whether to see them.
CLIENT_LOGGER = logging.getLogger("podrec.kafka")


class KafkaResource(ConfigurableResource):
    """A Kafka cluster: the local KRaft broker by default, any cluster by ``PODREC_KAFKA_BOOTSTRAP``
    and the security settings.

    Each client logs in as the user of its role: the producer as the event producer's, the consumer,
    Spark's source, the admin calls and the broker check as ingestion's (the lag sensor watches
    ingestion's group), each falling back to ``sasl_username`` where its role has none.

    The config holds who connects and how, never a password: with a SASL protocol, the settings
    (the environment or ``PODREC_SECRETS_DIR``) are read when a client is made, so no secret is part
    of the resource's config, its Dagster UI page or a run's config."""

    bootstrap: str
    events_topic: str
    impressions_topic: str
    consumer_group: str
    timeout_s: float = 5.0
    delivery_timeout_s: float = 60.0
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    producer_sasl_username: str | None = None
    ingest_sasl_username: str | None = None

    def connection(self, role: KafkaRole | None = None) -> KafkaSettings:
        """The settings a client of ``role`` connects with: its user, and its password read now from the
        settings (``None``: the default user)."""
        if not self.security_protocol.startswith("SASL_"):
            return KafkaSettings(bootstrap=self.bootstrap, security_protocol=self.security_protocol)
        current = load_settings().kafka
        loaded = {"producer": self.producer_sasl_username, "ingest": self.ingest_sasl_username}
        who = (self.security_protocol, self.sasl_mechanism, loaded.get(role or "") or self.sasl_username)
        user, password = current.credential(role) if current.sasl else (None, None)
        now = (current.security_protocol, current.sasl_mechanism, user)
        if now != who:
            raise RuntimeError(
                f"the Kafka settings now say {' '.join(map(str, now))}, not {' '.join(map(str, who))} "
                "as when the code location was loaded: reload it"
            )
        return KafkaSettings(
            bootstrap=self.bootstrap,
            security_protocol=self.security_protocol,
            sasl_mechanism=self.sasl_mechanism,
            sasl_username=user,
            sasl_password=password,
        )

    def spark_source_options(self) -> dict[str, str]:
        """Options that point Spark's Kafka source at this cluster as ingestion's user (they hold the
        password: pass them to the reader only)."""
        return spark_source_options(self.connection("ingest"))

    def _base(self, role: KafkaRole, watch: AuthenticationWatch | None = None) -> dict[str, Any]:
        config = {**client_config(self.connection(role)), "logger": CLIENT_LOGGER}
        return config if watch is None else {**config, "error_cb": watch}

    def producer(self, **overrides: Any) -> Producer:
        """An idempotent producer as the event producer's user (a retried send never lands twice on the
        topic), once the broker has answered within ``timeout_s``; a record not acknowledged within
        ``delivery_timeout_s`` fails."""
        watch = AuthenticationWatch()
        producer = Producer(
            {**self._base("producer", watch), "enable.idempotence": True, "linger.ms": 20,
             "message.timeout.ms": int(self.delivery_timeout_s * 1000), **overrides}
        )  # fmt: skip
        require_broker(producer, self.bootstrap, self.timeout_s, watch)
        return producer

    def consumer(self, group_id: str | None = None, **overrides: Any) -> Consumer:
        """A consumer as ingestion's user in ``group_id`` (default: the ingestion group) that never
        auto-commits."""
        return Consumer(
            {
                **self._base("ingest"),
                "group.id": group_id or self.consumer_group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                **overrides,
            }
        )

    def admin(self) -> AdminClient:
        return AdminClient(self._base("ingest"))

    def require_broker(self) -> None:
        """Raise ``BrokerUnreachable`` unless the cluster answers ingestion's user within ``timeout_s``
        (``CredentialsRefused`` if it answers but refuses the SASL credentials)."""
        watch = AuthenticationWatch()
        require_broker(AdminClient(self._base("ingest", watch)), self.bootstrap, self.timeout_s, watch)
