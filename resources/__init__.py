"""Dagster resources, one per external system, chosen from the settings tree in one place.

``build_resources`` is the only function that decides which Spark, lake, Kafka, MongoDB and
episode source a deployment talks to; each resource takes its section of the settings, and
assets only ever name the resource they need. Knobs of the rules (ALS, hybrid, engagement…)
are not resources: the code location hands each asset its section of the same tree.
"""

from __future__ import annotations

from typing import Any

from podrec.lake.spark import spark_conf
from podrec.settings import PodcastIndexSettings, PodrecSettings, without_credentials
from resources.audio import AudioCacheResource
from resources.embedding import EmbeddingModelResource
from resources.episode_source import EpisodeSource, PodcastIndexResource, SampleCatalogResource
from resources.kafka import KafkaResource
from resources.lake import LakeResource
from resources.mongo import MongoResource
from resources.spark import SparkResource
from resources.vosk import VoskResource

__all__ = [
    "AudioCacheResource",
    "EmbeddingModelResource",
    "EpisodeSource",
    "KafkaResource",
    "LakeResource",
    "MongoResource",
    "PodcastIndexResource",
    "SampleCatalogResource",
    "SparkResource",
    "VoskResource",
    "build_resources",
]


def episode_source(podcastindex: PodcastIndexSettings) -> EpisodeSource:
    """The live API when credentials are set, else the bundled sample catalog."""
    if podcastindex.api_key is None or podcastindex.api_secret is None:
        return SampleCatalogResource()
    return PodcastIndexResource(base_url=podcastindex.base_url)


def build_resources(settings: PodrecSettings) -> dict[str, Any]:
    """Every resource of a deployment. No secret is a config field: resources that need one read it
    from the settings when they connect (Dagster shows config in its UI and stores it with runs)."""
    uri = settings.mongo.uri.get_secret_value()
    return {
        "episode_source": episode_source(settings.podcastindex),
        "spark": SparkResource(spark_config=spark_conf(settings, require_jars=False)),
        "lake": LakeResource(root=settings.lake.root),
        "kafka": KafkaResource(
            bootstrap=settings.kafka.bootstrap,
            events_topic=settings.kafka.events_topic,
            consumer_group=settings.kafka.consumer_group,
            timeout_s=settings.kafka.timeout_s,
            delivery_timeout_s=settings.kafka.delivery_timeout_s,
        ),
        "vosk": VoskResource(model_dir=settings.vosk.model_dir),
        "audio": AudioCacheResource(directory=str(settings.data.audio_path), **settings.audio.model_dump()),
        "embedding_model": EmbeddingModelResource(),
        "mongo": MongoResource(
            uri=without_credentials(uri),
            database=settings.mongo.database,
            credentials=without_credentials(uri) != uri,
        ),
    }
