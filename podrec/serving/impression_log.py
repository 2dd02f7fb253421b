"""Logging served lists to Kafka without ever slowing or failing the request that served them.

A request only puts its impression in a bounded in-process queue (``log``: never blocks, never raises);
one background thread moves the queue into a Kafka producer, whose own queue is bounded the same way.
When the broker is slow or away both fill up, and what does not fit is dropped and counted; what
librdkafka gives up on after ``message.timeout.ms`` is counted as undelivered, by reason. So at any time:
logged = delivered + dropped + undelivered + waiting, and waiting ≤ 2 · capacity.

Each record is signed here (``Impression.wire``), in the background thread, with the key ingestion
checks it against. A broker that refuses the credentials is not a slow broker: librdkafka says so only
to ``error_cb`` while the records wait out their timeout, so the refusal is logged once, shown at once
(``problem``) and given as the reason of every record it keeps from the broker — until one is delivered.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError

from podrec.ingest.impressions import Impression

LOG = logging.getLogger(__name__)
STOP = object()
CREDENTIALS_REFUSED = (
    "credentials refused: the broker refused the API's SASL credentials (check PODREC_KAFKA_SASL_USERNAME, "
    "PODREC_KAFKA_SASL_PASSWORD and PODREC_KAFKA_SASL_MECHANISM)"
)
# How long librdkafka keeps trying one record before it reports it undelivered.
MESSAGE_TIMEOUT_MS = 30_000
# How long closing waits for the broker to take what is still queued (shutdown of an API worker).
CLOSE_FLUSH_S = 5.0


class ImpressionLog:
    """Bounded queue → background thread → Kafka producer; counts what it could not send, and why.

    ``producer_factory(config)`` builds the producer in the background thread (e.g.
    ``confluent_kafka.Producer`` over ``client_config``), so even a slow client start never touches a
    request. ``key`` signs every record (``podrec.settings.impressions_signing_key``).
    """

    def __init__(
        self, producer_factory: Callable[[dict[str, Any]], Any], topic: str, capacity: int, key: bytes
    ) -> None:
        self.topic = topic
        self.capacity = capacity
        self._factory = producer_factory
        self._key = key
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=capacity)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._counts = {"logged": 0, "delivered": 0, "dropped": 0, "undelivered": 0}
        self._reasons: dict[str, int] = {}
        self._refused = False
        self._in_producer = 0
        self._idle = threading.Event()
        self._idle.set()

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def log(self, impression: Impression) -> bool:
        """Queue ``impression`` for Kafka; False (and counted) if the buffer is full. Never blocks."""
        self._count("logged")
        self._start()
        self._idle.clear()
        try:
            self._queue.put_nowait(impression)
        except queue.Full:
            self._count("dropped")
            return False
        return True

    def metrics(self) -> dict[str, int]:
        """Counters since start, and how many wait in either queue."""
        with self._lock:
            waiting = self._queue.qsize() + self._in_producer
            return {**self._counts, "waiting": waiting, "capacity": self.capacity}

    def undelivered(self) -> dict[str, int]:
        """Undelivered impressions since start, by reason."""
        with self._lock:
            return dict(self._reasons)

    def problem(self) -> str | None:
        """What keeps the broker from taking impressions now (refused credentials), or None."""
        with self._lock:
            return CREDENTIALS_REFUSED if self._refused else None

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="impression-log", daemon=True)
                    self._thread.start()

    def _delivered(self, err: Any, _msg: Any) -> None:
        with self._lock:
            self._in_producer -= 1
            if err is None:
                self._counts["delivered"] += 1
                self._refused = False
                return
            self._counts["undelivered"] += 1
            reason = CREDENTIALS_REFUSED if self._refused else err.str()
            self._reasons[reason] = self._reasons.get(reason, 0) + 1

    def _broker_error(self, error: KafkaError) -> None:
        """librdkafka's ``error_cb``: the only place it reports refused credentials."""
        if error.code() != KafkaError._AUTHENTICATION:
            return  # a broker away or slow shows as records timing out, with their own reason
        with self._lock:
            first, self._refused = not self._refused, True
        if first:  # librdkafka repeats it at every reconnection: one line per refusal is enough
            LOG.warning("impressions are not delivered: %s; Kafka said: %s", CREDENTIALS_REFUSED, error.str())

    def _run(self) -> None:
        producer = self._factory(
            {
                "queue.buffering.max.messages": self.capacity,
                "message.timeout.ms": MESSAGE_TIMEOUT_MS,
                "linger.ms": 50,
                "enable.idempotence": True,
                "error_cb": self._broker_error,
            }
        )
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                producer.poll(0)
                if self._queue.empty() and self.metrics()["waiting"] == 0:
                    self._idle.set()
                continue
            if item is STOP:
                break
            try:
                with self._lock:
                    self._in_producer += 1
                producer.produce(
                    self.topic,
                    key=item.user_id.encode(),
                    value=item.wire(self._key),
                    on_delivery=self._delivered,
                )
            except BufferError:
                with self._lock:
                    self._in_producer -= 1
                    self._counts["dropped"] += 1
            producer.poll(0)
        producer.flush(CLOSE_FLUSH_S)
        self._idle.set()

    def drain(self, timeout_s: float) -> bool:
        """Wait until everything logged so far is delivered or given up on; True if nothing waits."""
        if self._thread is None:
            return True
        self._idle.wait(timeout_s)
        return self.metrics()["waiting"] == 0

    def close(self) -> None:
        """Stop the thread after it hands what it holds to the producer (flushing a few seconds)."""
        if self._thread is not None:
            self._queue.put(STOP)
            self._thread.join()
