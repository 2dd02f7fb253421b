"""Integration fixtures shared by modules: a lake with a week of simulated listening, modelled."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from dagster import DagsterInstance, materialize

from podrec.content.podcastindex import sample_snapshot
from podrec.ingest.kafka_to_bronze import run as ingest
from podrec.ingest.producer import simulate_to_kafka
from podrec.settings import PodrecSettings
from podrec_assets.calendar import partition_range_tags
from resources import build_resources
from tests.conftest import assets
from tests.integration.test_ingest import isolated
from tests.reads import ReadLog

END = date(2026, 11, 20)
DAYS = [END - timedelta(days=6 - i) for i in range(7)]


@pytest.fixture(scope="session")
def lake(local_infra, spark, settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lakehouse]:
    """Seven simulated days ingested from Kafka, the content track run, engagement materialized. From
    here to the end of the session, which tables each materializing asset reads is recorded
    (``lake.reads``, tests/reads.py)."""
    reads = ReadLog()
    with reads.recording():
        yield build_the_week(settings, spark, tmp_path_factory, reads)


def build_the_week(
    settings: PodrecSettings, spark: Any, tmp_path_factory: pytest.TempPathFactory, reads: ReadLog
) -> Lakehouse:
    root = tmp_path_factory.mktemp("models")
    own = isolated(settings, root).with_(data={"dir": str(root / "data")}, als={"rank": 16, "max_iter": 8})
    resources = build_resources(own)
    kafka, lake_ = resources["kafka"], resources["lake"]
    catalog, _ = sample_snapshot(END)
    simulate_to_kafka(
        kafka.producer(), kafka.events_topic, catalog, DAYS, 800, epoch=date(2026, 11, 1), seed=5
    )
    ingest(spark, kafka, lake_.table("bronze", "user_events"), lake_.table("bronze", "user_events_rejected"))
    instance = DagsterInstance.ephemeral()
    key = END.isoformat()
    catalog_assets = assets(own, "bronze/episodes", "silver/episodes")
    assert materialize(catalog_assets, partition_key=key, resources=resources, instance=instance).success
    content = assets(own, "silver/transcripts", "gold/episode_embeddings", "gold/episode_similarity")
    assert materialize(content, resources=resources, instance=instance).success
    tags = partition_range_tags(DAYS[0].isoformat(), key)
    events = assets(own, "silver/user_events", "silver/daily_engagement")
    assert materialize(events, resources=resources, instance=instance, tags=tags).success
    return Lakehouse(own, resources, instance, reads)


@dataclass(frozen=True)
class Lakehouse:
    """The shared week-long lake: the settings it was built with, its resources, its Dagster instance."""

    settings: PodrecSettings
    resources: dict[str, Any]
    instance: DagsterInstance
    reads: ReadLog
