"""Shared fixtures: test settings on free ports and a temporary lake, one Spark session,
and the real local Kafka broker and FerretDB for the whole run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from podrec.settings import PodrecSettings, load_settings
from podrec_app import localinfra
from podrec_app.localinfra import free_port


def assets(settings: PodrecSettings, *tables: str) -> list:
    """The code location's assets (and, with ``checks=`` names, checks) by table, e.g.
    ``assets(settings, "silver/user_events")``, built from ``settings`` as Dagster would."""
    from dagster import AssetKey

    from podrec_assets.definitions import build_definitions

    defs = build_definitions(settings)
    return [defs.get_assets_def(AssetKey(table.split("/"))) for table in tables]


def settings_env(settings: PodrecSettings) -> dict[str, str]:
    """The environment that makes a child process (CLI, webserver) see these settings."""
    return {
        **os.environ,
        "PODREC_LAKE_URI": settings.lake.uri,
        "PODREC_DATA_DIR": settings.data.dir,
        "PODREC_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
        "PODREC_KAFKA_CONTROLLER_PORT": str(settings.kafka.controller_port),
        "PODREC_MONGO_URI": settings.mongo.uri.get_secret_value(),
        # the suite's small Spark: a child's stages on test-sized data are mostly task overhead
        "PODREC_SPARK_DRIVER_MEMORY": settings.spark.driver_memory,
        "PODREC_SPARK_SHUFFLE_PARTITIONS": str(settings.spark.shuffle_partitions),
    }


def make_settings(root: Path) -> PodrecSettings:
    return load_settings(
        lake={"uri": str(root / "lake")},
        data={"dir": str(root / "data")},
        kafka={"bootstrap": f"127.0.0.1:{free_port()}", "controller_port": free_port()},
        mongo={"uri": f"mongodb://127.0.0.1:{free_port()}/"},
        spark={"driver_memory": "2g", "shuffle_partitions": 2},
    )


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> PodrecSettings:
    return make_settings(tmp_path_factory.mktemp("podrec"))


@pytest.fixture(scope="session")
def spark(settings: PodrecSettings):
    """One JVM for the whole run (it takes seconds to start); Dagster's resource reuses it."""
    from dagster_pyspark.resources import spark_session_from_config

    from podrec.lake.spark import spark_conf

    session = spark_session_from_config(spark_conf(settings, app_name="podrec-tests"))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def local_infra(settings: PodrecSettings) -> Iterator[list[localinfra.ServiceStatus]]:
    statuses = localinfra.up(settings)
    yield statuses
    localinfra.down(settings)
