"""A partitioned backfill through Dagster's own machinery (``podrec backfill`` → the GraphQL API's
launchPartitionBackfill on the webserver, runs queued and launched by the daemon, checks in every run),
and the day that fails its blocking check re-run alone once its data is fixed."""

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, RunsFilter
from delta.tables import DeltaTable

from tests.conftest import settings_env
from tests.integration.conftest import DAYS
from tests.integration.test_quality import append, day_rows

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
ENGAGEMENT = AssetKey(["silver", "daily_engagement"])


def podrec_backfill(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "podrec_app.cli", "backfill", "engagement", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip


@pytest.mark.timeout(1500)  # two backfills of real Spark runs, after the shared lake is built
def test_backfill_of_several_days_and_a_failed_day_rerun_alone(lake, settings, spark, tmp_path: Path) -> None:
    resources = lake.resources
    root = tmp_path / "lake"
    shutil.copytree(resources["lake"].root, root)
    days = [d.isoformat() for d in DAYS[-3:]]
    # A client bug on the middle day reuses an event id, which silver's blocking key check refuses.
    bronze = str(root / "bronze" / "user_events")
    event = day_rows(spark, bronze, "event_date").iloc[[0]].assign(event_date=DAYS[-2], event_id="reused-id")
    at = event["occurred_at"] - pd.Timedelta(days=1)  # an END event, moved to the day before
    append(spark, bronze, event.assign(kafka_offset=10**9, occurred_at=at + pd.Timedelta(seconds=1)))
    append(spark, bronze, event.assign(kafka_offset=10**9 + 1, occurred_at=at + pd.Timedelta(seconds=2)))

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "infra" / "dagster.yaml", home / "dagster.yaml")  # as make demo / make dev use it
    env = settings_env(settings) | {"PODREC_LAKE_URI": str(root), "DAGSTER_HOME": str(home)}

    first = podrec_backfill(env, "--from", days[0], "--to", days[-1])
    assert first.returncode == 1, first.stdout + first.stderr
    assert f"--partitions {days[1]}" in first.stderr  # says how to re-run the failed day alone
    with DagsterInstance.from_config(str(home)) as instance:
        runs = {r.tags["dagster/partition"]: r for r in instance.get_runs(RunsFilter(job_name="engagement"))}
        assert set(runs) == set(days)
        assert len({r.tags["dagster/backfill"] for r in runs.values()}) == 1  # one backfill, one run per day
        assert [runs[d].status.value for d in days] == ["SUCCESS", "FAILURE", "SUCCESS"]
        assert instance.get_materialized_partitions(ENGAGEMENT) == {days[0], days[2]}
        checks = [
            e.dagster_event.event_specific_data
            for e in instance.all_logs(runs[days[1]].run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
        ]
        assert {(c.asset_key.to_user_string(), c.check_name) for c in checks if not c.passed} == {
            ("silver/user_events", "unique_keys")
        }
        assert len(checks) > 5  # every check of silver/user_events ran in that run

    # Fix the data and re-run the failed day alone: one new run, one new commit, the rest untouched.
    DeltaTable.forPath(spark, bronze).delete("event_id = 'reused-id'")
    engagement = str(root / "silver" / "daily_engagement")
    commits = DeltaTable.forPath(spark, engagement).history().count()
    second = podrec_backfill(env, "--partitions", days[1])
    assert second.returncode == 0, second.stdout + second.stderr
    with DagsterInstance.from_config(str(home)) as instance:
        rerun = [r for r in instance.get_runs(RunsFilter(job_name="engagement")) if r.run_id not in
                 {x.run_id for x in runs.values()}]  # fmt: skip
        assert [(r.tags["dagster/partition"], r.status.value) for r in rerun] == [(days[1], "SUCCESS")]
        assert instance.get_materialized_partitions(ENGAGEMENT) == set(days)
    assert DeltaTable.forPath(spark, engagement).history().count() == commits + 1
