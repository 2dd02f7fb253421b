"""Writing events to Kafka: the simulator's and an imported log's shared path to the topic."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from tqdm import tqdm

from podrec.ingest.events import encode
from podrec.ingest.simulator import simulate

# librdkafka fails a record after its delivery timeout (``message.timeout.ms``: 300 s by default, the
# KafkaResource's ``delivery_timeout_s``), so by then every queued record has landed or failed.
FLUSH_TIMEOUT_S = 310.0


class BrokerUnreachable(RuntimeError):
    """The Kafka cluster did not answer in time; the message names it and what to do."""


class CredentialsRefused(BrokerUnreachable):
    """The cluster answered but refused podrec's SASL credentials."""


class AuthenticationWatch:
    """A client's ``error_cb`` that keeps the last SASL authentication failure: librdkafka reports
    one only there, while the request that could not be sent just times out."""

    def __init__(self) -> None:
        self.failure: str | None = None

    def __call__(self, error: KafkaError) -> None:
        if error.code() == KafkaError._AUTHENTICATION:
            self.failure = error.str()


def require_broker(
    client: Producer | AdminClient, bootstrap: str, timeout_s: float, watch: AuthenticationWatch | None = None
) -> None:
    """Ask the cluster for its metadata, so a command fails in ``timeout_s`` rather than queueing
    events for a broker that is not there; with ``watch`` (the client's ``error_cb``), refused
    credentials are told apart from a broker that is away."""
    try:
        client.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        if watch is not None:
            client.poll(0)  # serves the error callbacks queued while waiting
            if watch.failure is not None:
                raise CredentialsRefused(
                    f"Kafka at {bootstrap} refused podrec's credentials ({watch.failure}): check "
                    "PODREC_KAFKA_SASL_USERNAME, PODREC_KAFKA_SASL_PASSWORD and PODREC_KAFKA_SASL_MECHANISM"
                ) from None
        raise BrokerUnreachable(
            f"Kafka at {bootstrap} did not answer within {timeout_s:g}s ({exc.args[0].str()}): start it "
            "with `podrec infra up` or point PODREC_KAFKA_BOOTSTRAP at a running broker"
        ) from exc


def produce_events(
    producer: Producer,
    topic: str,
    events: Iterable[dict[str, Any]],
    total: int | None = None,
    progress: bool = True,
    description: str = "events → kafka",
) -> int:
    """Send ``events`` keyed by user (one user's events stay in order); returns the count.

    Raises if any record failed to be delivered, after flushing the rest. Each record waits at most
    the producer's ``message.timeout.ms`` for its acknowledgement, so the flush is bounded too.
    """
    failures: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    sent = 0
    with tqdm(total=total, desc=description, unit="ev", disable=not progress, mininterval=1) as bar:
        for event in events:
            if failures:  # the broker went away: stop rather than queue more for it
                break
            _send(producer, topic, event, on_delivery)
            sent += 1
            if sent % 1000 == 0:
                bar.update(1000)
                producer.poll(0)
        bar.update(sent % 1000)
    undelivered = producer.flush(FLUSH_TIMEOUT_S)
    if undelivered:
        raise KafkaException(f"{undelivered} of {sent} events were still waiting for the broker")
    if failures:
        raise KafkaException(f"{len(failures)} of {sent} events were not delivered: {failures[0]}")
    return sent


def _send(producer: Producer, topic: str, event: dict[str, Any], on_delivery: Any) -> None:
    key = str(event.get("user_id", "")).encode()
    while True:
        try:
            producer.produce(topic, key=key, value=encode(event), on_delivery=on_delivery)
            return
        except BufferError:
            # The local queue is full: let the broker catch up, then try again.
            producer.poll(0.5)


def simulate_to_kafka(
    producer: Producer,
    topic: str,
    catalog: list[dict[str, Any]],
    days: list[date],
    users: int,
    epoch: date,
    seed: int = 42,
    n_episodes: int | None = None,
    progress: bool = True,
) -> dict[date, int]:
    """Simulate ``days`` of listening and produce it; returns events sent per day."""
    sent = {}
    for day, events in simulate(catalog, days, users, epoch=epoch, seed=seed, n_episodes=n_episodes):
        sent[day] = produce_events(producer, topic, events, len(events), progress, description=str(day))
    return sent
