"""Where a consumer group stands on a topic: the numbers ingestion and the lag sensor share."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, TopicPartition


@dataclass(frozen=True)
class PartitionOffsets:
    partition: int
    low: int  # oldest offset the broker still holds
    high: int  # next offset to be written
    committed: int | None  # next offset the group will read; None if it never committed

    @property
    def start(self) -> int:
        """Where the group resumes: its commit, or the oldest record still held."""
        return self.low if self.committed is None else max(self.committed, self.low)

    @property
    def lost(self) -> int:
        """Records the group never read that retention already deleted."""
        return 0 if self.committed is None else max(0, self.low - self.committed)

    @property
    def lag(self) -> int:
        return max(0, self.high - self.start)


def group_offsets(
    consumer: Consumer, topic: str, timeout_s: float = 10.0, missing_topic_ok: bool = False
) -> list[PartitionOffsets]:
    """Offsets of every partition of ``topic`` for ``consumer``'s group.

    Raises ``KafkaException`` when the broker is unreachable or its metadata carries an error
    (not authorised, topic unknown): an error, never an empty topic. ``missing_topic_ok`` makes
    only an unknown topic read as one without offsets (nothing written yet, nothing lagging).
    """
    metadata = consumer.list_topics(topic, timeout=timeout_s)
    topic_meta = metadata.topics.get(topic)
    error = None if topic_meta is None else topic_meta.error
    if topic_meta is None or error is not None:
        code = KafkaError.UNKNOWN_TOPIC_OR_PART if error is None else error.code()
        if missing_topic_ok and code == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return []
        detail = "not in the broker's metadata" if error is None else error.str()
        raise KafkaException(KafkaError(code, f"topic {topic!r}: {detail}"))
    partitions = sorted(topic_meta.partitions)
    committed = _committed(consumer, [TopicPartition(topic, p) for p in partitions], timeout_s)
    for tp in committed:
        if tp.error is not None:  # e.g. the group is not authorised: never "no commit yet"
            raise KafkaException(KafkaError(tp.error.code(), f"group offsets of {topic!r}: {tp.error.str()}"))
    by_partition = {tp.partition: tp.offset for tp in committed}
    result = []
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
        offset = by_partition.get(p, OFFSET_INVALID)
        result.append(PartitionOffsets(p, low, high, None if offset < 0 else offset))
    return result


_COORDINATOR_MOVING = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
}


def _committed(
    consumer: Consumer, partitions: list[TopicPartition], timeout_s: float
) -> list[TopicPartition]:
    # Right after a broker (re)starts, or when group coordination moves, the coordinator
    # answers "not coordinator" / "load in progress" for a few seconds: wait that out.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return consumer.committed(partitions, timeout=timeout_s)
        except KafkaException as exc:
            error = exc.args[0]
            if not (error.retriable() or error.code() in _COORDINATOR_MOVING) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def commit(consumer: Consumer, topic: str, next_offsets: dict[int, int], timeout_s: float = 10.0) -> None:
    """Record that the group has everything before ``next_offsets`` (synchronously).

    A partition never moves back: another consumer of the group may have committed further.
    """
    if not next_offsets:
        return
    current = _committed(consumer, [TopicPartition(topic, p) for p in sorted(next_offsets)], timeout_s)
    ahead = {tp.partition: tp.offset for tp in current if tp.error is None}
    consumer.commit(
        offsets=[TopicPartition(topic, p, max(o, ahead.get(p, o))) for p, o in sorted(next_offsets.items())],
        asynchronous=False,
    )


def oldest_unread_timestamp(
    consumer: Consumer, topic: str, positions: list[PartitionOffsets], timeout_s: float = 5.0
) -> datetime | None:
    """When the oldest record the group has not read yet was written (None if all read).

    Reads one record at each lagging partition's resume offset; never commits.
    """
    oldest: datetime | None = None
    for p in positions:
        if p.lag == 0:
            continue
        consumer.assign([TopicPartition(topic, p.partition, p.start)])
        msg = consumer.poll(timeout_s)
        if msg is None or msg.error() is not None:
            continue
        _, millis = msg.timestamp()
        written = datetime.fromtimestamp(millis / 1000, tz=UTC)
        oldest = written if oldest is None else min(oldest, written)
    consumer.unassign()
    return oldest
