"""Days of podrec run by the automation daemon alone, on a simulated clock: a rehearsal, not a benchmark.

No schedule exists and nothing here asks for a run. The script plays two parts only:
- the listeners: before each midnight it produces the day's simulated listening to the events topic;
- the clock: it runs Dagster's own automation daemon (``AssetDaemon``, the code ``dagster-daemon``
  runs) one tick at a time with the time frozen at successive moments, every 15 minutes from midnight
  to 06:00, and lets the runs the daemon launched finish before the clock moves on.

Runs are launched the production way: the instance's run launcher starts each in a process of its own
from the code location's server. Everything lives in a data folder, topics, consumer group and MongoDB
database of the rehearsal's own; Kafka and FerretDB must be up (``podrec infra up``).

    .venv/bin/python bench/automation_days.py --days 3

writes ``bench/results/automation_days.json``: each run the daemon launched (assets, partition, the
fake time of the tick that asked for it, its status and wall time), and for every asset the time from
its inputs' last materialization to the start of the run that materialized it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "automation_days.json"
DATA = ROOT / "data" / "automation-days"
TICK = timedelta(minutes=15)
NIGHT = timedelta(hours=6)  # ticks run from midnight to 06:00, when the daily assets are due


def rehearsal_env(first: date) -> dict[str, str]:
    """The settings the daemon's code location reads: a world of the rehearsal's own — its data folder
    and lake, and topics, a consumer group and a database no earlier rehearsal has touched."""
    run = f"{int(time.time())}"
    return {
        "PODREC_DATA_DIR": str(DATA),
        "PODREC_LAKE_URI": str(DATA / "lakehouse"),
        "PODREC_PARTITIONS_START": first.isoformat(),
        "PODREC_AUTOMATION_RUNNING": "true",
        "PODREC_KAFKA_EVENTS_TOPIC": f"podrec.rehearsal-{run}.events",
        "PODREC_KAFKA_IMPRESSIONS_TOPIC": f"podrec.rehearsal-{run}.impressions",
        "PODREC_KAFKA_CONSUMER_GROUP": f"podrec-rehearsal-{run}",
        "PODREC_MONGO_DATABASE": f"podrec_rehearsal_{run}",
        "DAGSTER_HOME": str(DATA / "dagster_home"),
    }


def produce_the_days_listening(settings, day: date, users: int) -> int:
    """The listeners of ``day``: the simulator's events for it, on the events topic before midnight."""
    from podrec.ingest.producer import produce_events
    from podrec.ingest.simulator import simulate
    from resources import build_resources

    built = build_resources(settings)
    catalog, _ = built["episode_source"].snapshot(day)
    ((_, events),) = simulate(catalog, [day], users, epoch=settings.partitions.start, seed=42)
    kafka = built["kafka"]
    return produce_events(kafka.producer(), kafka.events_topic, events, total=len(events), progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--first", type=date.fromisoformat, default=date(2026, 12, 1))
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args()

    shutil.rmtree(DATA, ignore_errors=True)
    (DATA / "dagster_home").mkdir(parents=True)
    os.environ.update(rehearsal_env(args.first))
    # The instance of a deployment (infra/dagster.yaml), with runs launched as soon as they are submitted:
    # the run queue is another daemon, and this rehearsal drives the automation daemon alone.
    config = (ROOT / "infra" / "dagster.yaml").read_text() + (
        "run_coordinator:\n  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n"
    )
    (DATA / "dagster_home" / "dagster.yaml").write_text(config)

    from dagster import DagsterInstance, RunsFilter
    from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES
    from dagster._core.test_utils import freeze_time
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster._daemon.asset_daemon import AssetDaemon

    from podrec.settings import load_settings

    settings = load_settings()
    instance = DagsterInstance.get()
    target = WorkspaceFileTarget(paths=[str(ROOT / "workspace.yaml")])  # what `make dev` loads
    launched: dict[str, str] = {}  # run id → the fake time of the tick that launched it
    produced: dict[str, int] = {}
    with WorkspaceProcessContext(instance, target) as workspace:
        daemon = AssetDaemon(settings=instance.get_auto_materialize_settings(), pre_sensor_interval_seconds=0)

        def tick(at: datetime) -> None:
            with freeze_time(at):
                daemon._run_iteration_impl(workspace, None, {}, {})
            for run in instance.get_runs():
                launched.setdefault(run.run_id, at.isoformat())
            while instance.get_runs(filters=RunsFilter(statuses=list(NOT_FINISHED_STATUSES))):
                time.sleep(5)

        for offset in range(args.days):
            day = args.first + timedelta(days=offset)
            evening = datetime(day.year, day.month, day.day, 23, 30, tzinfo=UTC)
            produced[day.isoformat()] = produce_the_days_listening(settings, day, args.users)
            print(f"{day}: {produced[day.isoformat()]} events produced", flush=True)
            moment = evening
            while moment <= evening + timedelta(minutes=30) + NIGHT:
                tick(moment)
                moment += TICK
            print(f"{day}: {len(launched)} runs so far", flush=True)

    RESULTS.write_text(json.dumps(report(instance, launched, produced), indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


def report(instance, launched: dict[str, str], produced: dict[str, int]) -> dict:
    """Each run in launch order, and how long after its inputs' newest materialization (by another run)
    the run that read them started, in wall-clock seconds."""
    from dagster import AssetKey, AssetRecordsFilter, DagsterEventType

    from podrec.settings import load_settings
    from podrec_assets.definitions import build_definitions

    graph = build_definitions(load_settings()).get_repository_def().asset_graph
    records = sorted(instance.get_run_records(), key=lambda r: r.create_timestamp)
    runs, waits = [], []
    for record in records:
        run = record.dagster_run
        events = instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
        ).records
        assets = sorted({e.asset_key.to_user_string() for e in events})
        runs.append(
            {
                "run_id": run.run_id[:8],
                "tick": launched.get(run.run_id),
                "partition": run.tags.get("dagster/partition"),
                "assets": assets,
                "status": run.status.value,
                "wall_s": round((record.end_time or 0) - (record.start_time or 0), 1),
            }
        )
        inputs = {p for a in assets for p in graph.get(AssetKey(a.split("/"))).parent_keys} - {
            AssetKey(a.split("/")) for a in assets
        }
        newest = [
            (found[0].timestamp, parent.to_user_string())
            for parent in inputs
            if (found := instance.fetch_materializations(
                AssetRecordsFilter(asset_key=parent, before_timestamp=record.start_time), limit=1
            ).records)
        ]  # fmt: skip
        if newest and record.start_time:
            at, parent = max(newest)
            waits.append(
                {"run_id": run.run_id[:8], "after": parent, "seconds": round(record.start_time - at, 1)}
            )
    return {"produced_events": produced, "runs": runs, "upstream_to_run_start": waits}


if __name__ == "__main__":
    main()
