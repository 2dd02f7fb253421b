"""The Spark session: dagster-pyspark's lazy resource, started on first use with Delta and Kafka jars."""

from __future__ import annotations

from dagster_pyspark import LazyPySparkResource
from dagster_pyspark.resources import spark_session_from_config

from podrec.lake.spark import auth_secret_conf, require_delta_jars
from podrec.settings import load_settings


class SparkResource(LazyPySparkResource):
    """Starts the session only when an asset asks for it, and refuses to start without the Delta jars
    (``make setup``): loading the code location, or a command that needs no Spark, never needs them.

    With ``spark.authenticate`` on, the secret is no config field (Dagster shows config in its UI and
    stores it with runs): it is read from the settings as the session starts."""

    def _init_session(self) -> None:
        jars = [j for j in self.spark_config.get("spark.jars", "").split(",") if j]
        require_delta_jars(jars, "the set-up cache (jars/spark)")
        if self._spark_session is None and self.spark_config.get("spark.authenticate") == "true":
            self._spark_session = spark_session_from_config(
                {**self.spark_config, **auth_secret_conf(load_settings())}
            )
        super()._init_session()
