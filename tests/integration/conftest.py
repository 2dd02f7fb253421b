"""Integration fixtures shared by modules: a lake with a week of simulated listening, modelled."""

from datetime import date, timedelta

import pytest
from dagster import DagsterInstance, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from podrec.content.podcastindex import sample_snapshot
from podrec.ingest.kafka_to_bronze import run as ingest
from podrec.ingest.producer import simulate_to_kafka
from podrec_assets.bronze import bronze_episodes
from podrec_assets.gold_content import gold_episode_embeddings, gold_episode_similarity
from podrec_assets.silver import (
    silver_daily_engagement,
    silver_episodes,
    silver_transcripts,
    silver_user_events,
)
from resources import RecommenderResource, build_resources
from tests.integration.test_ingest import isolated

END = date(2026, 11, 20)
DAYS = [END - timedelta(days=6 - i) for i in range(7)]


@pytest.fixture(scope="session")
def lake(local_infra, spark, settings, tmp_path_factory: pytest.TempPathFactory):
    """Seven simulated days ingested from Kafka, the content track run, engagement materialized."""
    root = tmp_path_factory.mktemp("models")
    own = isolated(settings, root).model_copy(update={"data_dir": str(root / "data")})
    resources = build_resources(own)
    resources["recommender"] = RecommenderResource(als_rank=16, als_max_iter=8)
    kafka, lake_ = resources["kafka"], resources["lake"]
    catalog, _ = sample_snapshot(END)
    simulate_to_kafka(
        kafka.producer(), kafka.events_topic, catalog, DAYS, 800, epoch=date(2026, 11, 1), seed=5
    )
    ingest(spark, kafka, lake_.table("bronze", "user_events"), lake_.table("bronze", "user_events_rejected"))
    instance = DagsterInstance.ephemeral()
    key = END.isoformat()
    assert materialize(
        [bronze_episodes, silver_episodes], partition_key=key, resources=resources, instance=instance
    ).success
    content = [silver_transcripts, gold_episode_embeddings, gold_episode_similarity]
    assert materialize(content, resources=resources, instance=instance).success
    tags = {ASSET_PARTITION_RANGE_START_TAG: DAYS[0].isoformat(), ASSET_PARTITION_RANGE_END_TAG: key}
    assert materialize(
        [silver_user_events, silver_daily_engagement], resources=resources, instance=instance, tags=tags
    ).success
    return resources, instance
