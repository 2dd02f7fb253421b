"""Request a Kafka → bronze ingestion run when the events topic backs up.

The decision is a plain function (``assess``); the sensor only gathers the numbers, keeps
a cursor of the watermarks it last acted on, and turns the decision into a run request
whose key is derived from those watermarks, so a tick never starts the same work twice.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import KafkaException
from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from podrec.ingest.kafka_offsets import PartitionOffsets, group_offsets, oldest_unread_timestamp
from podrec.settings import KafkaSettings
from resources import KafkaResource


@dataclass(frozen=True)
class LagDecision:
    run: bool
    reason: str
    lag: int
    age_s: float | None


def assess(
    positions: list[PartitionOffsets],
    oldest_unread: datetime | None,
    now: datetime,
    lag_threshold: int,
    max_age_s: float,
) -> LagDecision:
    """Ingest when enough events wait, or when the oldest waiting event is too old."""
    lag = sum(p.lag for p in positions)
    age = None if oldest_unread is None else max(0.0, (now - oldest_unread).total_seconds())
    if lag == 0:
        return LagDecision(False, "the consumer group is caught up (lag 0)", lag, age)
    if lag >= lag_threshold:
        return LagDecision(True, f"lag {lag} ≥ threshold {lag_threshold}", lag, age)
    if age is not None and age >= max_age_s:
        return LagDecision(True, f"oldest unread event is {age:.0f}s old ≥ {max_age_s:.0f}s", lag, age)
    age_text = "unknown" if age is None else f"{age:.0f}s"
    return LagDecision(
        False, f"lag {lag} < {lag_threshold} and oldest unread {age_text} < {max_age_s:.0f}s", lag, age
    )


def watermarks(positions: list[PartitionOffsets]) -> dict[str, int]:
    return {str(p.partition): p.high for p in positions}


def build_kafka_lag_sensor(settings: KafkaSettings, running: bool = False) -> SensorDefinition:
    """The sensor with the deployment's thresholds (``PODREC_KAFKA_LAG_THRESHOLD``, ``…_MAX_AGE_S``),
    requesting the ``ingest_events`` job (podrec_assets/bronze.py). ``running``: it starts switched
    on (the cluster profile, whose daemon runs it) rather than waiting for a person to turn it on."""
    lag_threshold, max_age_s = settings.lag_threshold, settings.max_age_s

    @sensor(
        name="kafka_lag_sensor",
        job_name="ingest_events",
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING if running else DefaultSensorStatus.STOPPED,
        description=(
            f"Requests ingestion when the events topic is {lag_threshold} events behind, "
            f"or its oldest unread event is {max_age_s:.0f}s old."
        ),
    )
    def kafka_lag_sensor(context: SensorEvaluationContext, kafka: KafkaResource) -> SensorResult | SkipReason:
        consumer = kafka.consumer(**{"socket.timeout.ms": 5000})
        try:
            # A topic nobody has written to yet has nothing waiting: caught up, not an error.
            positions = group_offsets(consumer, kafka.events_topic, timeout_s=5.0, missing_topic_ok=True)
            oldest = oldest_unread_timestamp(consumer, kafka.events_topic, positions)
        except KafkaException as exc:
            return SkipReason(f"Kafka unreachable at {kafka.bootstrap}: {exc.args[0].str()}")
        finally:
            consumer.close()
        decision = assess(positions, oldest, datetime.now(UTC), lag_threshold, max_age_s)
        if not decision.run:
            return SkipReason(decision.reason)
        cursor = json.dumps(watermarks(positions), sort_keys=True)
        if cursor == context.cursor:
            return SkipReason(f"{decision.reason}, but a run was already requested for these offsets")
        run_key = "ingest-" + hashlib.sha256(cursor.encode()).hexdigest()[:16]
        return SensorResult(
            run_requests=[RunRequest(run_key=run_key, tags={"podrec/lag": str(decision.lag)})],
            cursor=cursor,
        )

    return kafka_lag_sensor
