"""What the list routes share for the life of a worker: the MongoDB client and the store over it, the
gate, the telemetry, the impression log and the clock — built once from the settings."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from confluent_kafka import Producer
from pymongo import MongoClient
from starlette.concurrency import run_in_threadpool

from api.auth import Verifier
from api.gate import Gate
from api.limits import RateLimits
from api.store import NotInMemory, ServingStore
from api.telemetry import Telemetry
from podrec.ingest.kafka_security import client_config
from podrec.serving.impression_log import ImpressionLog
from podrec.settings import PodrecSettings, impressions_signing_key

Answer = TypeVar("Answer")


def utc_now() -> datetime:
    return datetime.now(UTC)


async def memory_first(answer: Callable[[bool], Answer]) -> Answer:
    """``answer(memory_only=True)`` on the event loop; if it needs MongoDB, ``answer(False)`` in a thread,
    where waiting for MongoDB blocks nobody: a thread hop costs more than the whole answer from memory."""
    try:
        return answer(True)
    except NotInMemory:
        return await run_in_threadpool(answer, False)


@dataclass(frozen=True)
class Serving:
    settings: PodrecSettings
    client: MongoClient
    store: ServingStore
    gate: Gate
    telemetry: Telemetry
    impressions: ImpressionLog
    clock: Callable[[], datetime]  # stamps impressions (a simulation serves its own days)

    @classmethod
    def from_settings(cls, settings: PodrecSettings, clock: Callable[[], datetime] = utc_now) -> "Serving":
        api, timeout = settings.api, settings.api.mongo_timeout_ms
        telemetry = Telemetry(metrics=api.metrics, access_log=api.access_log)
        client: MongoClient = MongoClient(
            settings.mongo.uri.get_secret_value(), serverSelectionTimeoutMS=timeout, connectTimeoutMS=timeout,
            socketTimeoutMS=5 * timeout, tz_aware=True,
        )  # fmt: skip
        store = ServingStore(
            client[settings.mongo.database], api.version_cache_s, cache_bytes=api.cache_mb * 2**20,
            miss_bytes=api.miss_cache_mb * 2**20, observe=telemetry.cache_lookup,
        )  # fmt: skip
        # The address, the security settings and the API's own user.
        kafka = client_config(settings.kafka, role="api")
        impressions = ImpressionLog(
            lambda config: Producer({**kafka, **config}), settings.kafka.impressions_topic,
            api.impressions_buffer, impressions_signing_key(settings),
        )  # fmt: skip
        gate = Gate(Verifier.from_settings(settings), RateLimits(api))
        return cls(settings, client, store, gate, telemetry, impressions, clock)

    def start(self) -> None:
        self.telemetry.start(self.impressions)

    def close(self) -> None:
        self.impressions.close()
        self.telemetry.stop()
        self.client.close()
