"""Kafka clients for podrec's topics (confluent-kafka, i.e. librdkafka)."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from dagster import ConfigurableResource


class KafkaResource(ConfigurableResource):
    """A Kafka cluster: the local KRaft broker by default, any cluster by ``PODREC_KAFKA_BOOTSTRAP``."""

    bootstrap: str
    events_topic: str
    impressions_topic: str
    consumer_group: str

    def _base(self) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap}

    def producer(self, **overrides: Any) -> Producer:
        # Idempotent producer: a retried send never lands twice on the topic.
        return Producer({**self._base(), "enable.idempotence": True, "linger.ms": 20, **overrides})

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
