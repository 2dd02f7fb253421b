"""The daily job on the cluster profile beside the local profile, same data, in one run.

For each profile, in a fresh data folder: ``podrec infra up --profile P``, then ``podrec demo``
(the same seeded simulation and catalog on both: 2,000 listeners over a week), then
``podrec infra down``. The demo's second Dagster run is the daily job for its last day; its wall
time (from the run's own start and end in the Dagster instance: SQLite locally, PostgreSQL on the
cluster profile) is the number, with the whole demo's wall time beside it.

Local: ``local[*]`` Spark, one Kafka node, FerretDB on SQLite, a local lake. Cluster: a Spark
standalone master with two 1-core workers, three SASL/SCRAM Kafka nodes, FerretDB on PostgreSQL
with a login, Dagster's instance on PostgreSQL with its daemon, the lake on SeaweedFS through
s3a / delta-rs. The lag sensor's thresholds are raised for both, so the daemon does not start an
ingestion of its own in the middle of the timed run.

    .venv/bin/python bench/cluster.py

Results: ``bench/results/cluster.json``: ``profiles.<name>.daily_job_s``, ``.demo_s``, ``.run_id``,
``.services`` (healthy ones), ``.lake_uri``, ``.lake_tables_written``, ``.spark_applications``
(cluster: what the standalone master ran), and ``ratio.daily_job`` / ``ratio.demo`` = cluster / local.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "podrec_app.cli"]
# The daily run's wall time from its instance; on the cluster profile that lives in PostgreSQL, opened
# with the environment podrec gives its own processes (no credential passes through this script).
RUN_WALL = """
import json, os, sys
from dagster import DagsterInstance
from podrec.settings import load_settings
from podrec_app.localinfra import cluster_environment
os.environ.update(cluster_environment(load_settings()))
with DagsterInstance.get() as instance:
    stats = instance.get_run_stats(sys.argv[1])
    print(json.dumps({"seconds": stats.end_time - stats.start_time}))
"""


def podrec(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*CLI, *args], env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"podrec {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def profile_env(profile: str, root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PODREC_", "DAGSTER_", "AWS_"))}
    env |= {
        "PODREC_PROFILE": profile,
        "PODREC_DATA_DIR": str(root / "data"),
        "PODREC_KAFKA_LAG_THRESHOLD": str(10**12),
        "PODREC_KAFKA_MAX_AGE_S": str(10**9),
    }
    if profile == "local":
        env |= {"PODREC_LAKE_URI": str(root / "lakehouse"), "DAGSTER_HOME": str(root / "dagster_home")}
        (root / "dagster_home").mkdir(parents=True)
        shutil.copy(REPO / "infra" / "dagster.yaml", root / "dagster_home" / "dagster.yaml")
    return env


def measure(profile: str, root: Path) -> dict:
    env = profile_env(profile, root)
    podrec(env, "infra", "up", "--timeout", "240")
    try:
        started = time.monotonic()
        out = podrec(env, "demo")
        demo_s = time.monotonic() - started
        status = json.loads(podrec(env, "infra", "status", "--json"))
        tables = json.loads(podrec(env, "tables", "--json"))["tables"]
        spark_apps = spark_applications() if profile == "cluster" else {}
        run_id = out.split("Dagster runs: ", 1)[1].split(" (", 1)[0].split(", ")[1]
        wall = subprocess.run(
            [sys.executable, "-c", RUN_WALL, run_id], env=env, cwd=REPO,
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        podrec(env, "infra", "down")
    return {
        "daily_job_s": round(json.loads(wall.stdout)["seconds"], 1),
        "demo_s": round(demo_s, 1),
        "run_id": run_id,
        "services": [s["name"] for s in status if s["healthy"]],
        "lake_tables_written": sum(t["version"] is not None for t in tables),
        "lake_uri": tables[0]["uri"].rsplit("/", 2)[0] if tables else None,
        "spark_applications": spark_apps,
    }


def spark_applications() -> dict:
    """What the cluster profile's standalone master ran, and on how many live workers (its /json/)."""
    import urllib.request

    with urllib.request.urlopen("http://127.0.0.1:8080/json/", timeout=5) as response:
        status = json.loads(response.read())
    apps = status.get("activeapps", []) + status.get("completedapps", [])
    return {
        "workers_alive": sum(w["state"] == "ALIVE" for w in status["workers"]),
        "applications": [{"name": a["name"], "cores": a["cores"], "state": a["state"]} for a in apps],
    }


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="podrec-bench-cluster-", dir="/tmp"))
    base.chmod(0o755)  # the cluster profile's PostgreSQL runs as its own user, who must reach it
    try:
        profiles = {}
        for profile in ("local", "cluster"):
            (base / profile).mkdir()
            profiles[profile] = measure(profile, base / profile)
            print(profile, profiles[profile], flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    local, cluster = profiles["local"], profiles["cluster"]
    result = {
        "machine": f"{os.cpu_count()} cores",
        "profiles": profiles,
        "ratio": {
            "daily_job": round(cluster["daily_job_s"] / local["daily_job_s"], 2),
            "demo": round(cluster["demo_s"] / local["demo_s"], 2),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cluster.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["ratio"]))


if __name__ == "__main__":
    main()
