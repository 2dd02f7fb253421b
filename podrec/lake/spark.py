"""Spark configuration for a session with Delta Lake and the Kafka connector.

The jars come from the set-up cache (infra/setup.sh resolved them from Maven Central),
so Spark never reaches for the network at run time. The same dict configures
dagster-pyspark's resource and the session tests share.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from podrec.lake.object_store import s3a_conf
from podrec.settings import PodrecSettings


class SetupMissingError(RuntimeError):
    """A piece infra/setup.sh installs is absent: say what, and how to get it."""


def require_delta_jars(jars: list[str], jar_dir: str) -> None:
    if not any("delta-spark" in Path(j).name for j in jars):
        raise SetupMissingError(
            f"Delta Lake jars not found in {jar_dir}; run `make setup` (infra/setup.sh) first."
        )


def on_this_machine(master: str) -> bool:
    """``local[*]``, or a standalone master on loopback (``podrec infra up`` starts that one)."""
    return master.startswith("local") or (
        master.startswith("spark://") and urlsplit(master).hostname in ("127.0.0.1", "localhost", "::1")
    )


def extra_jars(settings: PodrecSettings, required: bool = True) -> list[str]:
    jar_dir = settings.cache.path / "jars" / "spark"
    jars = sorted(str(p) for p in jar_dir.glob("*.jar"))
    if required:
        require_delta_jars(jars, str(jar_dir))
    return jars


def s3a_classpath(settings: PodrecSettings, required: bool = True) -> str | None:
    """hadoop-aws and the AWS SDK from the set-up cache, for an ``s3a://`` lake on a master on this
    machine (a remote cluster brings its own); None otherwise."""
    if not (settings.lake.on_object_store and on_this_machine(settings.spark.master)):
        return None
    jar_dir = settings.cache.path / "jars" / "s3a"
    jars = sorted(str(p) for p in jar_dir.glob("*.jar"))
    if not any("hadoop-aws" in Path(j).name for j in jars):
        if not required:
            return None
        raise SetupMissingError(f"hadoop-aws not found in {jar_dir}; run `make setup` first.")
    return ":".join(jars)


def spark_conf(
    settings: PodrecSettings, app_name: str = "podrec", require_jars: bool = True, with_secret: bool = True
) -> dict[str, str]:
    """Every Spark setting podrec needs; ``PODREC_SPARK_CONF`` entries override these.

    ``require_jars=False`` builds the configuration without the jars set-up installs (a Dagster
    resource checks them when the session starts, so commands without Spark never need them).
    ``with_secret=False`` leaves out the secret of ``spark.authenticate`` (``auth_secret_conf``), for a
    configuration that is shown (a Dagster resource's), whose session adds it as it starts. The
    returned dict may hold that secret: hand it to the session builder and nowhere else."""
    # Spark picks the first non-loopback address otherwise, which breaks on hosts whose
    # hostname does not resolve; local runs (and a standalone cluster on this machine, whose
    # executors reach the driver over loopback) never need to be reached from outside.
    here = on_this_machine(settings.spark.master)
    if here:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # pyspark starts its Python workers with $PYSPARK_PYTHON (not the spark.pyspark.python
        # setting, which only spark-submit reads): make it the driver's own interpreter.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    conf = {
        "spark.app.name": app_name,
        "spark.master": settings.spark.master,
        "spark.jars": ",".join(extra_jars(settings, required=require_jars)),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.driver.memory": settings.spark.driver_memory,
        "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
        # The cleaner deletes checkpoints nothing references, so the directory does not grow by a fit a day.
        "spark.cleaner.referenceTracking.cleanCheckpoints": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.ui.enabled": "false",
        # Readers such as delta-rs (DuckDB's path) need plain protocol features; keep
        # deletion vectors off unless a deployment opts in through PODREC_SPARK_CONF.
        "spark.databricks.delta.properties.defaults.enableDeletionVectors": "false",
    }
    # ALS truncates its lineage only with a checkpoint directory: without one, recomputing what a lost
    # executor held replays every iteration and dies of a StackOverflowError (seen with 30 iterations
    # and a worker killed on the standalone cluster). local[*] has no executor to lose, and the
    # checkpoint would cost every fit a write, so it checkpoints only when asked to.
    if settings.spark.checkpoint_dir or not settings.spark.master.startswith("local"):
        # The lake's absolute root: a relative path would land in each executor's own work directory.
        conf["spark.checkpoint.dir"] = settings.spark.checkpoint_dir or f"{settings.lake.root}/_checkpoints"
    if here:
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
    # From the local disk, not spark.jars: executors on this machine read the same files, and the SDK
    # bundle is too big to ship to every application's work directory.
    if (classpath := s3a_classpath(settings, required=require_jars)) is not None:
        conf["spark.driver.extraClassPath"] = classpath
        conf["spark.executor.extraClassPath"] = classpath
    if settings.spark.auth_secret is not None:
        # A standalone master refuses a driver without the shared secret. The driver sends its executors
        # none: each worker hands its own (the same) to the executors it starts, through their environment.
        conf["spark.authenticate"] = "true"
        if with_secret:
            conf.update(auth_secret_conf(settings))
    conf.update(s3a_conf(settings.lake))
    conf.update(settings.spark.conf)
    return conf


def auth_secret_conf(settings: PodrecSettings) -> dict[str, str]:
    """``spark.authenticate.secret`` from ``PODREC_SPARK_AUTH_SECRET`` (empty when unset). Spark takes it
    only from the driver's configuration on a standalone master (secret files are for Kubernetes), so it
    goes into the session's configuration, set through py4j, never on a command line."""
    secret = settings.spark.auth_secret
    return {} if secret is None else {"spark.authenticate.secret": secret.get_secret_value()}
