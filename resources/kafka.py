"""Kafka clients for podrec's topics (confluent-kafka, i.e. librdkafka)."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from dagster import ConfigurableResource

from podrec.ingest.producer import require_broker

# librdkafka's own log lines (a refused connection every second while a broker is away) go through
# this logger instead of straight to stderr, so whoever runs podrec decides whether to see them.
CLIENT_LOGGER = logging.getLogger("podrec.kafka")


class KafkaResource(ConfigurableResource):
    """A Kafka cluster: the local KRaft broker by default, any cluster by ``PODREC_KAFKA_BOOTSTRAP``."""

    bootstrap: str
    events_topic: str
    consumer_group: str
    timeout_s: float = 5.0
    delivery_timeout_s: float = 60.0

    def _base(self) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap, "logger": CLIENT_LOGGER}

    def producer(self, **overrides: Any) -> Producer:
        """An idempotent producer (a retried send never lands twice on the topic), once the broker has
        answered within ``timeout_s``; a record not acknowledged within ``delivery_timeout_s`` fails."""
        producer = Producer(
            {**self._base(), "enable.idempotence": True, "linger.ms": 20,
             "message.timeout.ms": int(self.delivery_timeout_s * 1000), **overrides}
        )  # fmt: skip
        require_broker(producer, self.bootstrap, self.timeout_s)
        return producer

    def consumer(self, group_id: str | None = None, **overrides: Any) -> Consumer:
        """A consumer in ``group_id`` (default: the ingestion group) that never auto-commits."""
        return Consumer(
            {
                **self._base(),
                "group.id": group_id or self.consumer_group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                **overrides,
            }
        )

    def admin(self) -> AdminClient:
        return AdminClient(self._base())

    def require_broker(self) -> None:
        """Raise ``BrokerUnreachable`` unless the cluster answers within ``timeout_s``."""
        require_broker(self.admin(), self.bootstrap, self.timeout_s)
