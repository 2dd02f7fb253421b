"""The Kafka lag sensor against the real broker: real lag, caught up, broker down."""

from pathlib import Path

import pytest
from dagster import DagsterInstance, RunRequest, SkipReason, build_sensor_context

from podrec.ingest.producer import produce_events
from podrec.settings import KafkaSettings
from podrec_app import localinfra
from resources import KafkaResource, build_resources
from sensors.kafka_lag import build_kafka_lag_sensor
from tests.conftest import make_settings
from tests.integration.test_ingest import isolated, run_ingest, simulated

pytestmark = pytest.mark.integration


def tick(sensor, kafka: KafkaResource, cursor: str | None = None):
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, cursor=cursor, resources={"kafka": kafka})
        return sensor(context)


def test_lag_requests_a_run_then_skips_once_consumed(local_infra, spark, settings, tmp_path: Path) -> None:
    s = isolated(settings, tmp_path)
    kafka = build_resources(s)["kafka"]
    sensor = build_kafka_lag_sensor(KafkaSettings(lag_threshold=100, max_age_s=3600))

    first = tick(sensor, kafka)
    assert isinstance(first, SkipReason) and "caught up" in first.skip_message

    events = simulated(users=30)
    produce_events(kafka.producer(), kafka.events_topic, events, progress=False)
    result = tick(sensor, kafka)
    (request,) = result.run_requests
    assert isinstance(request, RunRequest)
    assert request.tags["podrec/lag"] == str(len(events))
    # Same watermarks, same key: a second tick with the cursor does not ask again.
    assert tick(sensor, kafka).run_requests[0].run_key == request.run_key
    repeat = tick(sensor, kafka, cursor=result.cursor)
    assert isinstance(repeat, SkipReason) and "already requested" in repeat.skip_message

    run_ingest(spark, s)
    caught_up = tick(sensor, kafka, cursor=result.cursor)
    assert isinstance(caught_up, SkipReason) and "lag 0" in caught_up.skip_message


def test_age_threshold_requests_small_but_old_backlogs(local_infra, settings, tmp_path: Path) -> None:
    s = isolated(settings, tmp_path)
    kafka = build_resources(s)["kafka"]
    produce_events(kafka.producer(), kafka.events_topic, simulated(users=5)[:3], progress=False)
    result = tick(build_kafka_lag_sensor(KafkaSettings(lag_threshold=1000, max_age_s=0)), kafka)
    assert len(result.run_requests) == 1
    small = tick(build_kafka_lag_sensor(KafkaSettings(lag_threshold=1000, max_age_s=3600)), kafka)
    assert isinstance(small, SkipReason) and "lag 3 < 1000" in small.skip_message


def test_broker_down_is_a_skip_not_a_crash(tmp_path: Path) -> None:
    """A broker with a backlog is stopped: the sensor says it cannot reach it, and does not crash."""
    own = make_settings(tmp_path)
    localinfra.up(own)
    try:
        kafka = build_resources(own)["kafka"]
        produce_events(kafka.producer(), kafka.events_topic, simulated(users=5)[:20], progress=False)
        sensor = build_kafka_lag_sensor(KafkaSettings(lag_threshold=1, max_age_s=1))
        assert len(tick(sensor, kafka).run_requests) == 1
    finally:
        localinfra.down(own)
    result = tick(sensor, kafka)
    assert isinstance(result, SkipReason)
    assert f"Kafka unreachable at {own.kafka.bootstrap}" in result.skip_message
