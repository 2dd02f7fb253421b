"""The lake on a real S3-API store (SeaweedFS, started by ``podrec infra``): Spark writes its Delta
tables through s3a, delta-rs reads them, and the store is restarted between two runs. Run alone with
``pytest -m faults``.

Each run is a child process: one JVM per process, and the rest of the suite shares a local one
without the s3a class path."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from podrec.lake.object_store import object_store_environment
from podrec.lake.tables import describe_table
from podrec.settings import PodrecSettings
from podrec_app import localinfra
from podrec_app.localinfra import free_port
from tests.conftest import make_settings, settings_env

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(900)]

# One day of engagement-shaped rows written the way the daily assets write a partition, then the
# whole table read back through Spark; prints what it read.
RUN = """
import json, sys
from pyspark.sql import SparkSession, functions as F
from podrec.lake.delta import replace_partitions
from podrec.lake.object_store import use_object_store
from podrec.lake.spark import spark_conf
from podrec.settings import load_settings

settings = load_settings()
use_object_store(settings.lake)  # as the command line and the code location do before any write
builder = SparkSession.builder
for key, value in spark_conf(settings, app_name="podrec-object-store-test").items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
day = sys.argv[1]
rows = spark.range(1000).select(
    F.concat(F.lit("u"), F.col("id").cast("string")).alias("user_id"),
    F.lit(1.0).alias("engagement"), F.lit(day).alias("event_date"))
table = settings.lake.root + "/silver/daily_engagement"
written = replace_partitions(rows, table, "event_date", [day])
read = spark.read.format("delta").load(table).groupBy("event_date").count().collect()
print(json.dumps({"version": written.version, "days": {r["event_date"]: r["count"] for r in read}}))
spark.stop()
"""


@pytest.fixture
def object_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PodrecSettings]:
    """SeaweedFS on free ports (each with its gRPC port, + 10000, free too), with its own key pair."""

    def port_with_grpc() -> int:
        while True:
            port = free_port()
            if port < 55535 and localinfra.port_free("127.0.0.1", port + 10000):
                return port

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "podrec-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secrets.token_urlsafe(16))
    settings = make_settings(tmp_path).with_(
        lake={"uri": "s3a://podrec-test/lakehouse", "s3_endpoint": f"http://127.0.0.1:{port_with_grpc()}"},
        object_store={"master_port": port_with_grpc(), "volume_port": port_with_grpc(),
                      "filer_port": port_with_grpc()},
    )  # fmt: skip
    for name, value in object_store_environment(settings.lake).items():
        monkeypatch.setenv(name, value)
    try:
        assert [s.name for s in localinfra.up(settings, only=["seaweedfs"])] == ["seaweedfs"]
        yield settings
    finally:
        localinfra.down(settings)


def run(settings: PodrecSettings, day: str, out: Path) -> dict:
    env = {**settings_env(settings), "PODREC_LAKE_S3_ENDPOINT": str(settings.lake.s3_endpoint),
           "PODREC_SPARK_DRIVER_MEMORY": "1g", "PODREC_SPARK_SHUFFLE_PARTITIONS": "2"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", RUN, day], env=env, capture_output=True, text=True, timeout=400
    )
    out.write_text(done.stdout + done.stderr)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_object_store_restarted_between_two_runs(object_store: PodrecSettings, tmp_path: Path) -> None:
    first = run(object_store, "2026-11-02", tmp_path / "first.out")
    assert first == {"version": 0, "days": {"2026-11-02": 1000}}

    (before,) = [s for s in localinfra.status(object_store) if s.name == "seaweedfs"]
    assert localinfra.down(object_store, only=["seaweedfs"]) == ["seaweedfs"]
    (after,) = localinfra.up(object_store, only=["seaweedfs"])
    assert after.healthy and after.pid != before.pid

    second = run(object_store, "2026-11-03", tmp_path / "second.out")
    assert second == {"version": 1, "days": {"2026-11-02": 1000, "2026-11-03": 1000}}
    # delta-rs (DuckDB's, the dashboard's and `podrec tables`' path) reads the same log: both commits,
    # in order, nothing lost in the restart.
    state = describe_table(object_store.lake.root, "silver/daily_engagement")
    assert (state.version, state.rows, state.newest_partition) == (1, 2000, "2026-11-03")


def test_drift_reports_on_the_object_store_reach_the_dashboard(object_store: PodrecSettings) -> None:
    """A drift check saves its Evidently report beside the tables; the dashboard lists and shows it."""
    import numpy as np
    import pandas as pd

    from dashboard.queries import drift_reports
    from podrec.quality.drift import column_drift, reports_root, save_report

    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"engagement": rng.normal(0, 1, 400)})
    current = pd.DataFrame({"engagement": rng.normal(2, 1, 400)})
    drift, snapshot = column_drift(current, reference, ["engagement"], [], drift_share=0.5)
    assert drift.warn
    saved = save_report(snapshot, reports_root(object_store.lake.root), "2026-11-03", "engagement")
    assert saved["html"].startswith("s3a://podrec-test/lakehouse/monitoring/drift_reports/2026-11-03/")

    (report,) = drift_reports(object_store.lake.root)
    assert (report.day, report.name, report.uri) == ("2026-11-03", "engagement.html", saved["html"])
    assert "engagement" in report.read_text()
