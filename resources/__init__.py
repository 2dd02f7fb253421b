"""Dagster resources, one per external system, chosen from settings in one place.

``build_resources`` is the only function that decides which Spark, Kafka, MongoDB and
lake a deployment talks to; assets only ever name the resource they need.
"""

from __future__ import annotations

import os
from typing import Any

from dagster import EnvVar
from dagster_pyspark import LazyPySparkResource

from podrec.settings import PodrecSettings
from podrec.spark import spark_conf
from resources.kafka import KafkaResource
from resources.lake import LakeResource
from resources.mongo import MongoResource

__all__ = ["KafkaResource", "LakeResource", "MongoResource", "build_resources"]


def _secret(env_var: str, value: str) -> Any:
    # Through EnvVar, Dagster shows the variable's name in its UI and run config, never the value.
    return EnvVar(env_var) if env_var in os.environ else value


def build_resources(settings: PodrecSettings) -> dict[str, Any]:
    return {
        "spark": LazyPySparkResource(spark_config=spark_conf(settings)),
        "lake": LakeResource(root=settings.lake_root),
        "kafka": KafkaResource(
            bootstrap_servers=settings.kafka_bootstrap, events_topic=settings.kafka_events_topic
        ),
        "mongo": MongoResource(
            uri=_secret("PODREC_MONGO_URI", settings.mongo_uri.get_secret_value()),
            database=settings.mongo_database,
        ),
    }
