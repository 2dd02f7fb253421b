"""A partitioned backfill through Dagster's own machinery (``podrec backfill`` → the GraphQL API's
launchPartitionBackfill on the webserver, runs queued and launched by the daemon, checks in every run),
the day that fails its blocking check re-run alone once its data is fixed, and a backfill of an older
day that is published but never served."""

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, RunsFilter, materialize
from delta.tables import DeltaTable

from podrec.serving.publish import PUBLISHES, active_version, collection
from resources import LakeResource, MongoResource
from tests.conftest import assets, settings_env
from tests.integration.conftest import DAYS
from tests.integration.test_quality import append, day_rows

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
ENGAGEMENT = AssetKey(["silver", "daily_engagement"])
SERVING = AssetKey(["mongo", "serving_version"])


def podrec_backfill(env: dict, job: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "podrec_app.cli", "backfill", job, *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip


def dagster_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "infra" / "dagster.yaml", home / "dagster.yaml")  # as make demo / make dev use it
    return home


# A planted bad day through two backfills of real Spark runs (about 11 minutes on two cores): the fault
# lane (make faults), like the other tests that break a run on purpose.
@pytest.mark.faults
@pytest.mark.timeout(1500)
def test_backfill_of_several_days_and_a_failed_day_rerun_alone(lake, settings, spark, tmp_path: Path) -> None:
    resources = lake.resources
    root = tmp_path / "lake"
    shutil.copytree(resources["lake"].root, root)
    # Two days, one run each (every run is a process of its own with its own Spark: minutes apiece).
    days = [d.isoformat() for d in DAYS[-2:]]
    # A client bug on the first day reuses an event id, which silver's blocking key check refuses.
    bronze = str(root / "bronze" / "user_events")
    event = day_rows(spark, bronze, "event_date").iloc[[0]].assign(event_date=DAYS[-2], event_id="reused-id")
    at = event["occurred_at"] - pd.Timedelta(days=1)  # an END event, moved to the day before
    append(spark, bronze, event.assign(kafka_offset=10**9, occurred_at=at + pd.Timedelta(seconds=1)))
    append(spark, bronze, event.assign(kafka_offset=10**9 + 1, occurred_at=at + pd.Timedelta(seconds=2)))

    home = dagster_home(tmp_path)
    env = settings_env(settings) | {"PODREC_LAKE_URI": str(root), "DAGSTER_HOME": str(home)}

    first = podrec_backfill(env, "engagement", "--from", days[0], "--to", days[-1])
    assert first.returncode == 1, first.stdout + first.stderr
    assert f"--partitions {days[0]}" in first.stderr  # says how to re-run the failed day alone
    with DagsterInstance.from_config(str(home)) as instance:
        runs = {r.tags["dagster/partition"]: r for r in instance.get_runs(RunsFilter(job_name="engagement"))}
        assert set(runs) == set(days)
        assert len({r.tags["dagster/backfill"] for r in runs.values()}) == 1  # one backfill, one run per day
        assert [runs[d].status.value for d in days] == ["FAILURE", "SUCCESS"]
        assert instance.get_materialized_partitions(ENGAGEMENT) == {days[1]}
        checks = [
            e.dagster_event.event_specific_data
            for e in instance.all_logs(runs[days[0]].run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
        ]
        assert {(c.asset_key.to_user_string(), c.check_name) for c in checks if not c.passed} == {
            ("silver/user_events", "unique_keys")
        }
        assert len(checks) > 5  # every check of silver/user_events ran in that run

    # Fix the data and re-run the failed day alone: one new run, one new commit, the rest untouched.
    DeltaTable.forPath(spark, bronze).delete("event_id = 'reused-id'")
    engagement = str(root / "silver" / "daily_engagement")
    commits = DeltaTable.forPath(spark, engagement).history().count()
    second = podrec_backfill(env, "engagement", "--partitions", days[0])
    assert second.returncode == 0, second.stdout + second.stderr
    with DagsterInstance.from_config(str(home)) as instance:
        rerun = [r for r in instance.get_runs(RunsFilter(job_name="engagement")) if r.run_id not in
                 {x.run_id for x in runs.values()}]  # fmt: skip
        assert [(r.tags["dagster/partition"], r.status.value) for r in rerun] == [(days[0], "SUCCESS")]
        assert instance.get_materialized_partitions(ENGAGEMENT) == set(days)
    assert DeltaTable.forPath(spark, engagement).history().count() == commits + 1


@pytest.mark.timeout(1500)  # one day fitted in process, one backfilled through the webserver and daemon
def test_a_backfill_of_an_older_day_is_kept_but_never_served(lake, settings, tmp_path: Path) -> None:
    """The newest day serves; backfilling the day before through the `recommendations` job (the daily
    job's model, lists and publish, without its silver and A/B steps) stages and gates that version and
    keeps it for rollback, and every listener keeps the newest day's lists."""
    root = tmp_path / "lake"
    shutil.copytree(lake.resources["lake"].root, root)
    own = lake.settings.with_(lake={"uri": str(root)})
    db = lake.resources["mongo"].client()[f"backfill_{uuid.uuid4().hex[:8]}"]
    resources = {**lake.resources, "lake": LakeResource(root=str(root)),
                 "mongo": MongoResource(uri=lake.resources["mongo"].uri, database=db.name)}  # fmt: skip
    newer, older = DAYS[-1].isoformat(), DAYS[-2].isoformat()
    daily = assets(own, "gold/als_factors", "gold/recommendations", "mongo/serving_version")
    try:
        assert materialize(daily, partition_key=newer, resources=resources, instance=lake.instance).success
        serving = active_version(db)
        assert db[PUBLISHES].find_one({"_id": serving})["rec_date"] == newer

        home = dagster_home(tmp_path)
        env = settings_env(settings) | {
            "PODREC_LAKE_URI": str(root), "PODREC_MONGO_DATABASE": db.name, "DAGSTER_HOME": str(home),
            # the shared lake's model settings, so the backfilled day is fitted like the newer one
            "PODREC_ALS_RANK": str(own.als.rank), "PODREC_ALS_MAX_ITER": str(own.als.max_iter),
            "PODREC_SPARK_SHUFFLE_PARTITIONS": str(own.spark.shuffle_partitions),
        }  # fmt: skip
        done = podrec_backfill(env, "recommendations", "--partitions", older)
        assert done.returncode == 0, done.stdout + done.stderr

        assert active_version(db) == serving
        (kept,) = db[PUBLISHES].find({"rec_date": older})
        assert kept["gate"]["passed"] and kept["status"] == "staged"
        assert kept["held"] == f"older than the active version {serving} ({newer})"
        assert collection("recommendations", kept["_id"]) in db.list_collection_names()  # kept for rollback
        with DagsterInstance.from_config(str(home)) as instance:
            (run,) = instance.get_runs(RunsFilter(job_name="recommendations"))
            assert (run.tags["dagster/partition"], run.status.value) == (older, "SUCCESS")
            (record,) = instance.fetch_materializations(SERVING, limit=10).records
            metadata = record.asset_materialization.metadata
            assert metadata["held"].value == kept["held"] and metadata["active"].value == serving
    finally:
        db.client.drop_database(db.name)
