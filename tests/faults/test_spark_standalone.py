"""podrec's Spark work as an application on a real standalone cluster (a master and two workers that
``podrec infra up`` starts from pyspark's own ``spark-class``), and a worker lost mid-fit. Run alone
with ``pytest -m faults``.

The job runs in a child process: one JVM per process, and the rest of the suite shares a local one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from podrec.settings import PodrecSettings
from podrec_app import localinfra
from podrec_app.localinfra import free_port
from tests.conftest import make_settings, settings_env

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(1800)]

USERS, EPISODES = 6_000, 800

# The daily fit's own code on generated ratings, then its rows written to Delta the way gold/als_factors
# writes them; prints what it fitted and wrote.
JOB = f"""
import json, sys
from datetime import date
from pyspark.sql import SparkSession, functions as F
from podrec.lake.delta import replace_partitions
from podrec.lake.spark import spark_conf
from podrec.recsys.als import factor_rows, fit
from podrec.settings import load_settings

settings = load_settings()
builder = SparkSession.builder
for key, value in spark_conf(settings, app_name="podrec-standalone-test").items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
ratings = (
    spark.range({USERS} * 40, numPartitions=8)
    .select(F.concat(F.lit("u"), (F.col("id") % {USERS}).cast("string")).alias("user_id"),
            F.concat(F.lit("e"), (F.hash("id") % {EPISODES} + {EPISODES}) % {EPISODES}).alias("episode_id"),
            (F.col("id") % 5 + 1).cast("float").alias("rating"))
    .groupBy("user_id", "episode_id").agg(F.sum("rating").alias("rating"))
)
als = settings.als.updated(rank=16, max_iter=int(sys.argv[1]), blocks=4)
fitted = fit(ratings, als)
rows = factor_rows(fitted, ratings, "v-test", date(2026, 11, 2))
table = settings.lake.uri + "/gold/als_factors"
replace_partitions(rows, table, "model_date", ["2026-11-02"])
written = spark.read.format("delta").load(table).groupBy("side").count().collect()
print(json.dumps({{"written": {{r["side"]: r["count"] for r in written}},
                   "executors": spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1}}))
spark.stop()
"""


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodrecSettings]:
    """A master and two 1-core workers on free ports, with their own lake."""
    master = free_port()
    own = make_settings(tmp_path_factory.mktemp("standalone")).with_(
        spark={"master": f"spark://127.0.0.1:{master}", "ui_port": free_port(), "worker_memory": "1g"}
    )
    try:
        started = localinfra.up(own, only=[s.name for s in localinfra.spark_standalone_services(own)])
        assert [s.name for s in started] == ["spark-master", "spark-worker-1", "spark-worker-2"]
        yield own
    finally:
        localinfra.down(own)


def standalone_port(settings: PodrecSettings, worker: int) -> int:
    """Worker ``worker``'s port (0-based): the master's + 1 + worker, as podrec infra starts them."""
    return int(settings.spark.master.rsplit(":", 1)[1]) + 1 + worker


def master_status(settings: PodrecSettings) -> dict:
    status = localinfra.spark_master_status("127.0.0.1", settings.spark.ui_port)
    assert status is not None, "the standalone master stopped answering"
    return status


def start_job(settings: PodrecSettings, iterations: int, out: Path) -> subprocess.Popen:
    env = {**settings_env(settings), "PODREC_SPARK_MASTER": settings.spark.master,
           "PODREC_SPARK_DRIVER_MEMORY": "1g", "PODREC_SPARK_SHUFFLE_PARTITIONS": "4"}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-c", JOB, str(iterations)], env=env, stdout=out.open("w"), stderr=subprocess.STDOUT
    )


def result_of(proc: subprocess.Popen, out: Path, timeout_s: float = 400) -> dict:
    assert proc.wait(timeout=timeout_s) == 0, out.read_text()[-3000:]
    return json.loads(out.read_text().strip().splitlines()[-1])


def test_a_worker_killed_during_the_als_fit(standalone: PodrecSettings, tmp_path: Path) -> None:
    """The daily fit runs as an application holding both workers; one is killed mid-fit, and Spark
    re-runs the lost executor's tasks on the other: the fit and its write still succeed, with every
    listener and episode."""
    out = tmp_path / "job.out"
    proc = start_job(standalone, 30, out)
    deadline = time.monotonic() + 180
    # Kill once the application holds both workers and the fit is under way (its iterations log nothing
    # to us, so: both executors up, then a few seconds).
    while not any(a["cores"] == 2 for a in master_status(standalone)["activeapps"]):
        assert proc.poll() is None, out.read_text()[-3000:]
        assert time.monotonic() < deadline, "the application never held both workers"
        time.sleep(0.5)
    time.sleep(15)
    assert proc.poll() is None, "the job ended before the worker could be killed: give it more iterations"
    (worker,) = [s for s in localinfra.status(standalone) if s.name == "spark-worker-2"]
    assert worker.pid is not None
    os.killpg(worker.pid, signal.SIGKILL)
    result = result_of(proc, out)
    assert result["written"] == {"user": USERS, "item": EPISODES}
    assert result["executors"] == 1  # the killed worker's executor is gone, its work redone on the other
    status = master_status(standalone)
    (app,) = [a for a in status["completedapps"] if a["name"] == "podrec-standalone-test"]
    assert app["state"] == "FINISHED"
    assert [w["port"] for w in status["workers"] if w["state"] == "ALIVE"] == [standalone_port(standalone, 0)]
