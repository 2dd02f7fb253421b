"""Dagster resources, one per external system, chosen from the settings tree in one place.

``build_resources`` is the only function that decides which Spark, lake, Kafka, MongoDB and
episode source a deployment talks to; each resource takes its section of the settings, and
assets only ever name the resource they need. Knobs of the rules (ALS, hybrid, engagement…)
are not resources: the code location hands each asset its section of the same tree.
"""

from __future__ import annotations

from typing import Any

from podrec.lake.spark import spark_conf
from podrec.settings import PodrecSettings, SettingsError, without_credentials
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
    # The key and secret are read from the settings when the client is made, never resource config.
    return PodcastIndexResource(base_url=api.base_url)


def build_resources(settings: PodrecSettings) -> dict[str, Any]:
    """Every resource of a deployment. No secret is a config field: resources that need one read it
    from the settings when they connect (Dagster shows config in its UI and stores it with runs)."""
    uri = settings.mongo.uri.get_secret_value()
    return {
        "episode_source": episode_source(settings),
        # The secret of spark.authenticate is no field either: SparkResource adds it as the session starts.
        "spark": SparkResource(spark_config=spark_conf(settings, require_jars=False, with_secret=False)),
        "lake": LakeResource(root=settings.lake.root),
        "kafka": KafkaResource(
            bootstrap=settings.kafka.bootstrap,
            events_topic=settings.kafka.events_topic,
            impressions_topic=settings.kafka.impressions_topic,
            consumer_group=settings.kafka.consumer_group,
            timeout_s=settings.kafka.timeout_s,
            delivery_timeout_s=settings.kafka.delivery_timeout_s,
            # The password is no field: the resource reads it from the settings when it connects.
            security_protocol=settings.kafka.security_protocol,
            sasl_mechanism=settings.kafka.sasl_mechanism,
            sasl_username=settings.kafka.sasl_username,
            producer_sasl_username=settings.kafka.producer_sasl_username,
            ingest_sasl_username=settings.kafka.ingest_sasl_username,
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
