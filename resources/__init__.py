"""Dagster resources, one per external system, chosen from the settings tree in one place.

``build_resources`` is the only function that decides which Spark, lake, Kafka, MongoDB and
episode source a deployment talks to; each resource takes its section of the settings, and
assets only ever name the resource they need. Knobs of the rules (ALS, hybrid, engagement…)
are not resources: the code location hands each asset its section of the same tree.
"""

from __future__ import annotations

import os
from typing import Any

from dagster import EnvVar
from pydantic import SecretStr

from podrec.lake.spark import spark_conf
from podrec.settings import PodcastIndexSettings, PodrecSettings
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


def _secret(env_var: str, value: SecretStr) -> Any:
    # Through EnvVar, Dagster shows the variable's name in its UI and run config, never the value.
    return EnvVar(env_var) if env_var in os.environ else value.get_secret_value()


def episode_source(podcastindex: PodcastIndexSettings) -> EpisodeSource:
    """The live API when credentials are set, else the bundled sample catalog."""
    if podcastindex.api_key is None or podcastindex.api_secret is None:
        return SampleCatalogResource()
    return PodcastIndexResource(
        base_url=podcastindex.base_url,
        api_key=_secret("PODREC_PODCASTINDEX_API_KEY", podcastindex.api_key),
        api_secret=_secret("PODREC_PODCASTINDEX_API_SECRET", podcastindex.api_secret),
    )


def build_resources(settings: PodrecSettings) -> dict[str, Any]:
    return {
        "episode_source": episode_source(settings.podcastindex),
        "spark": SparkResource(spark_config=spark_conf(settings, require_jars=False)),
        "lake": LakeResource(root=settings.lake.root),
        "kafka": KafkaResource(
            bootstrap=settings.kafka.bootstrap,
            events_topic=settings.kafka.events_topic,
            consumer_group=settings.kafka.consumer_group,
        ),
        "vosk": VoskResource(model_dir=settings.vosk.model_dir),
        "audio": AudioCacheResource(directory=str(settings.data.audio_path)),
        "embedding_model": EmbeddingModelResource(),
        "mongo": MongoResource(
            uri=_secret("PODREC_MONGO_URI", settings.mongo.uri), database=settings.mongo.database
        ),
    }
