"""Logging served lists to Kafka without ever slowing or failing the request that served them.

A request only puts its impression in a bounded in-process queue (``log``: never blocks, never raises);
one background thread moves the queue into a Kafka producer, whose own queue is bounded the same way.
When the broker is slow or away both fill up, and what does not fit is dropped and counted; what
librdkafka gives up on after ``message.timeout.ms`` is counted as undelivered. So at any time:
logged = delivered + dropped + undelivered + waiting, and waiting ≤ 2 · capacity.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from podrec.ingest.impressions import Impression

STOP = object()
# How long librdkafka keeps trying one record before it reports it undelivered.
MESSAGE_TIMEOUT_MS = 30_000
# How long closing waits for the broker to take what is still queued (shutdown of an API worker).
CLOSE_FLUSH_S = 5.0


class ImpressionLog:
    """Bounded queue → background thread → Kafka producer; counts what it could not send.

    ``producer_factory(config)`` builds the producer in the background thread (e.g.
    ``confluent_kafka.Producer``), so even a slow client start never touches a request.
    """

    def __init__(self, producer_factory: Callable[[dict[str, Any]], Any], topic: str, capacity: int) -> None:
        self.topic = topic
        self.capacity = capacity
        self._factory = producer_factory
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=capacity)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._counts = {"logged": 0, "delivered": 0, "dropped": 0, "undelivered": 0}
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

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="impression-log", daemon=True)
                    self._thread.start()

    def _delivered(self, err: Any, _msg: Any) -> None:
        with self._lock:
            self._in_producer -= 1
            self._counts["undelivered" if err is not None else "delivered"] += 1

    def _run(self) -> None:
        producer = self._factory(
            {
                "queue.buffering.max.messages": self.capacity,
                "message.timeout.ms": MESSAGE_TIMEOUT_MS,
                "linger.ms": 50,
                "enable.idempotence": True,
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
                    self.topic, key=item.user_id.encode(), value=item.wire(), on_delivery=self._delivered
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
