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
from podrec.settings import PodrecSettings, SettingsError
from resources.audio import AudioCacheResource
from resources.embedding import EmbeddingModelResource
from resources.episode_source import (
    EpisodeSource,
    PodcastIndexResource,
    SampleCatalogResource,
    SyntheticCatalogResource,
)
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
    "SyntheticCatalogResource",
    "VoskResource",
    "build_resources",
]


def _secret(env_var: str, value: SecretStr) -> Any:
    # Through EnvVar, Dagster shows the variable's name in its UI and run config, never the value.
    return EnvVar(env_var) if env_var in os.environ else value.get_secret_value()


def episode_source(settings: PodrecSettings) -> EpisodeSource:
    """``settings.catalog``: the live API, the bundled sample, or a synthetic catalog; ``auto`` is
    the API when its key is set, else the sample."""
    api = settings.podcastindex
    choice = settings.catalog
    if choice == "auto":
        choice = "sample" if api.api_key is None else "podcastindex"
    if choice == "sample":
        return SampleCatalogResource()
    if choice == "synthetic":
        synthetic = settings.synthetic
        return SyntheticCatalogResource(
            episodes=synthetic.episodes, shows=synthetic.shows, seed=synthetic.seed,
            start=settings.partitions.start.isoformat(),
        )  # fmt: skip
    if api.api_key is None or api.api_secret is None:
        missing = [n for n, v in (("KEY", api.api_key), ("SECRET", api.api_secret)) if v is None]
        raise SettingsError(
            "the PodcastIndex catalog needs PODREC_PODCASTINDEX_API_KEY and _API_SECRET in the environment; "
            f"missing: {', '.join(f'PODREC_PODCASTINDEX_API_{m}' for m in missing)}"
        )
    return PodcastIndexResource(
        base_url=api.base_url,
        api_key=_secret("PODREC_PODCASTINDEX_API_KEY", api.api_key),
        api_secret=_secret("PODREC_PODCASTINDEX_API_SECRET", api.api_secret),
    )


def build_resources(settings: PodrecSettings) -> dict[str, Any]:
    return {
        "episode_source": episode_source(settings),
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
