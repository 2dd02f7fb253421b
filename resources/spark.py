"""The Spark session: dagster-pyspark's lazy resource, started on first use with Delta and Kafka jars."""

from __future__ import annotations

from dagster_pyspark import LazyPySparkResource

from podrec.lake.spark import require_delta_jars


class SparkResource(LazyPySparkResource):
    """Starts the session only when an asset asks for it, and refuses to start without the Delta jars
    (``make setup``): loading the code location, or a command that needs no Spark, never needs them."""

    def _init_session(self) -> None:
        jars = [j for j in self.spark_config.get("spark.jars", "").split(",") if j]
        require_delta_jars(jars, "the set-up cache (jars/spark)")
        super()._init_session()
