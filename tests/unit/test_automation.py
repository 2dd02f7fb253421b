"""The automation conditions run the graph in dependency order: evaluated by Dagster's own evaluator over
a real (in-memory) instance, with upstream materializations and check results reported as they would be."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    AssetMaterialization,
    AssetRecordsFilter,
    DagsterInstance,
    DefaultSensorStatus,
    evaluate_automation_conditions,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from podrec.settings import load_settings
from podrec_assets.automation import conditions
from podrec_assets.daily import DAILY_ASSETS
from podrec_assets.definitions import build_definitions

defs = build_definitions(load_settings())
DAY = "2026-11-24"  # a Tuesday's partition, evaluated on Wednesday the 25th
GRAPH = defs.get_repository_def().asset_graph
DAILY_PATH = {"/".join(key) for key in DAILY_ASSETS}
CONTENT = {"silver/episodes", "silver/transcripts", "gold/episode_embeddings", "gold/episode_similarity"}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


class Daemon:
    """Successive ticks of the evaluator, each starting from the last tick's cursor."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.instance, self.cursor = instance, None

    def tick(self, when: datetime) -> dict[str, set[str | None]]:
        result = evaluate_automation_conditions(
            defs=defs, instance=self.instance, evaluation_time=when, cursor=self.cursor
        )
        self.cursor = result.cursor
        return {
            key.to_user_string(): set(result.get_requested_partitions(key))
            for key in conditions()
            if result.get_num_requested(key)
        }

    def landed(self, table: str, partition: str | None = None, checked: bool = True) -> None:
        """A materialization of ``table`` whose blocking checks passed, as a run would leave it."""
        key = AssetKey(table.split("/"))
        self.instance.report_runless_asset_event(AssetMaterialization(key, partition=partition))
        for check in GRAPH.get_check_keys_for_assets({key}) if checked else ():
            if GRAPH.get_check_spec(check).blocking:
                self.checked(table, check.name, passed=True, partition=partition)

    def checked(self, table: str, check: str, passed: bool, partition: str | None = None) -> None:
        """A check's result on the newest materialization of ``table`` (``partition``)."""
        key = AssetKey(table.split("/"))
        [latest] = self.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=None if partition is None else [partition]),
            limit=1,
        ).records
        target = AssetCheckEvaluationTargetMaterializationData(
            storage_id=latest.storage_id, run_id=latest.run_id, timestamp=latest.timestamp
        )
        self.instance.report_runless_asset_event(
            AssetCheckEvaluation(
                asset_key=key, check_name=check, passed=passed, partition=partition,
                target_materialization_data=target,
            )
        )  # fmt: skip


@pytest.fixture
def daemon() -> Iterator[Daemon]:
    with DagsterInstance.ephemeral() as instance:
        yield Daemon(instance)


def content_is_there(daemon: Daemon) -> None:
    for table in CONTENT:
        daemon.landed(table)
    daemon.landed("bronze/episodes", DAY)


def test_the_daily_path_waits_for_the_days_events_then_runs_in_one_tick(daemon: Daemon) -> None:
    content_is_there(daemon)
    daemon.landed("bronze/user_events")
    daemon.landed("bronze/impressions")
    daemon.tick(at(24, 23, 50))
    # Bronze was last written before midnight: the day may not all be there, so the tick waits.
    assert not DAILY_PATH & set(daemon.tick(at(25, 1, 31)))
    # The 00:15 drain should have run; it is late, and the daily path waits for it, not for the clock.
    daemon.landed("bronze/user_events")
    daemon.landed("bronze/impressions")
    requested = daemon.tick(at(25, 1, 45))
    assert {table for table in requested if table in DAILY_PATH} == DAILY_PATH
    assert all(requested[table] == {DAY} for table in DAILY_PATH)
    # Asked for once: the next tick does not ask again.
    assert not DAILY_PATH & set(daemon.tick(at(25, 2, 0)))


def test_a_failed_blocking_check_upstream_holds_the_day(daemon: Daemon) -> None:
    content_is_there(daemon)
    daemon.checked("silver/episodes", "unique_keys", passed=False)
    daemon.tick(at(25, 1, 0))
    daemon.landed("bronze/user_events")
    daemon.landed("bronze/impressions")
    held = daemon.tick(at(25, 1, 31))
    for table in held:  # the run of what was not held
        daemon.landed(table, *held[table])
    # What reads the episodes waits; what does not still runs.
    assert {"silver/user_events", "silver/daily_engagement", "silver/impressions"} <= set(held)
    assert not {"gold/als_factors", "gold/recommendations", "mongo/serving_version"} & set(held)
    daemon.checked("silver/episodes", "unique_keys", passed=True)
    assert {"gold/als_factors", "gold/recommendations", "mongo/serving_version"} <= set(
        daemon.tick(at(25, 1, 40))
    )


def test_bronze_lands_at_half_past_midnight_and_the_content_track_follows_it(daemon: Daemon) -> None:
    daemon.tick(at(25, 0, 0))
    requested = daemon.tick(at(25, 0, 31))
    assert requested["bronze/episodes"] == {DAY}
    # Never in the same tick as the snapshot it reads (that would be a second run racing the first) …
    assert not CONTENT & set(requested)
    assert {"bronze/user_events", "bronze/impressions"} <= set(requested)  # the 00:15 drain
    daemon.landed("bronze/episodes", DAY)
    # … but in the next, the whole track at once: one run, in dependency order.
    assert set(daemon.tick(at(25, 0, 32))) == CONTENT
    for table in CONTENT:
        daemon.landed(table)
    assert not CONTENT & set(daemon.tick(at(25, 0, 33)))
    daemon.landed("bronze/episodes", DAY, checked=False)  # a snapshot landed again brings the track back
    assert set(daemon.tick(at(25, 0, 34))) == CONTENT


def test_the_weekly_assets_run_on_their_day_for_the_day_before(daemon: Daemon) -> None:
    content_is_there(daemon)
    daemon.landed("silver/daily_engagement", "2026-11-22")
    daemon.tick(at(23, 2, 0))  # Monday the 23rd
    assert daemon.tick(at(23, 3, 1))["gold/evaluation"] == {"2026-11-22"}
    daemon.landed("gold/evaluation", "2026-11-22")
    assert daemon.tick(at(23, 4, 1))["gold/tuning"] == {"2026-11-22"}
    assert "gold/evaluation" not in daemon.tick(at(24, 3, 1))  # a Tuesday


def test_retention_and_maintenance_run_on_their_cron(daemon: Daemon) -> None:
    daemon.tick(at(28, 23, 0))  # Saturday
    assert daemon.tick(at(29, 4, 1))["monitoring/retention"] == {"2026-11-28"}
    assert daemon.tick(at(29, 5, 1))["monitoring/lake_maintenance"] == {"2026-11-28"}


def test_there_are_no_schedules_and_the_daemons_switch_follows_the_setting(tmp_path, monkeypatch) -> None:
    assert not list(defs.get_repository_def().schedule_defs)
    # Building the cluster profile's definitions points delta-rs at its object store (AWS_* variables):
    # keep that to this test.
    monkeypatch.setattr(os, "environ", os.environ.copy())
    cluster = build_definitions(load_settings(profile="cluster", data={"dir": str(tmp_path)}))
    for built, status in ((defs, DefaultSensorStatus.STOPPED), (cluster, DefaultSensorStatus.RUNNING)):
        assert built.resolve_sensor_def("automation_sensor").default_status == status
        assert built.resolve_sensor_def("kafka_lag_sensor").default_status == status
