"""Dagster resources, one per external system, chosen from settings in one place.

``build_resources`` is the only function that decides which Spark, Kafka, MongoDB and
lake a deployment talks to; assets only ever name the resource they need.
"""

from __future__ import annotations

import os
from typing import Any

from dagster import EnvVar
from dagster_pyspark import LazyPySparkResource

from podrec.lake.spark import spark_conf
from podrec.settings import PodrecSettings
from resources.audio import AudioCacheResource
from resources.embedding import EmbeddingModelResource
from resources.kafka import KafkaResource
from resources.lake import LakeResource
from resources.mongo import MongoResource
from resources.monitoring import MonitoringResource
from resources.podcastindex import EpisodeSource, PodcastIndexResource, SampleCatalogResource
from resources.recommender import RecommenderResource
from resources.vosk import VoskResource

__all__ = [
    "AudioCacheResource",
    "EmbeddingModelResource",
    "EpisodeSource",
    "KafkaResource",
    "LakeResource",
    "MongoResource",
    "MonitoringResource",
    "PodcastIndexResource",
    "RecommenderResource",
    "SampleCatalogResource",
    "VoskResource",
    "build_resources",
]


def _secret(env_var: str, value: str) -> Any:
    # Through EnvVar, Dagster shows the variable's name in its UI and run config, never the value.
    return EnvVar(env_var) if env_var in os.environ else value


def episode_source(settings: PodrecSettings) -> EpisodeSource:
    """The live API when credentials are set, else the bundled sample catalog."""
    if settings.podcastindex_api_key is None or settings.podcastindex_api_secret is None:
        return SampleCatalogResource()
    return PodcastIndexResource(
        base_url=settings.podcastindex_base_url,
        api_key=_secret("PODREC_PODCASTINDEX_API_KEY", settings.podcastindex_api_key.get_secret_value()),
        api_secret=_secret(
            "PODREC_PODCASTINDEX_API_SECRET", settings.podcastindex_api_secret.get_secret_value()
        ),
    )


def build_resources(settings: PodrecSettings) -> dict[str, Any]:
    return {
        "episode_source": episode_source(settings),
        "spark": LazyPySparkResource(spark_config=spark_conf(settings)),
        "lake": LakeResource(root=settings.lake_root),
        "kafka": KafkaResource(
            bootstrap_servers=settings.kafka_bootstrap,
            events_topic=settings.kafka_events_topic,
            consumer_group=settings.kafka_consumer_group,
        ),
        "vosk": VoskResource(model_dir=settings.vosk_model_dir),
        "audio": AudioCacheResource(directory=str(settings.audio_path)),
        "embedding_model": EmbeddingModelResource(),
        "recommender": RecommenderResource.from_settings(settings),
        "monitoring": MonitoringResource.from_settings(settings),
        "mongo": MongoResource(
            uri=_secret("PODREC_MONGO_URI", settings.mongo_uri.get_secret_value()),
            database=settings.mongo_database,
            publish_retention=settings.publish_retention,
            publish_min_share_of_previous=settings.publish_min_share_of_previous,
        ),
    }
