"""The schedules ask for the right partition of the right job, from the tick's time alone."""

import os
from datetime import UTC, datetime

from dagster import DagsterInstance, build_schedule_context

from podrec.settings import load_settings
from podrec_assets.definitions import build_definitions

defs = build_definitions(load_settings())


def evaluate(name: str, at: datetime) -> list:
    schedule = defs.resolve_schedule_def(name)
    with DagsterInstance.ephemeral() as instance:
        context = build_schedule_context(
            instance=instance, scheduled_execution_time=at, repository_def=defs.get_repository_def()
        )
        return list(schedule.evaluate_tick(context).run_requests or [])


def test_daily_schedule_runs_yesterday_through_to_the_publish() -> None:
    schedule = defs.resolve_schedule_def("daily_schedule")
    assert schedule.cron_schedule == "30 1 * * *" and schedule.job_name == "daily"
    [request] = evaluate("daily_schedule", datetime(2026, 11, 25, 1, 30, tzinfo=UTC))
    assert request.partition_key == "2026-11-24"
    job = defs.resolve_job_def("daily")
    keys = {key.to_user_string() for key in job.asset_layer.executable_asset_keys}
    assert keys == {"silver/user_events", "silver/daily_engagement", "silver/flagged_listeners",
                    "silver/impressions", "gold/als_factors", "gold/recommendations", "mongo/serving_version",
                    "monitoring/ab_analysis"}  # fmt: skip


def test_weekly_evaluation_takes_the_day_before_its_tick_with_a_stable_run_key() -> None:
    late_tick = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # a Monday
    [request] = evaluate("weekly_evaluation_schedule", late_tick)
    assert request.partition_key == "2026-11-22" and request.run_key == "evaluation-2026-11-22"
    assert evaluate("weekly_evaluation_schedule", late_tick)[0].run_key == request.run_key


def test_the_daily_job_runs_every_check_and_the_serving_gates_block() -> None:
    graph = defs.resolve_job_def("daily").asset_layer.asset_graph
    recs = {
        k.name: graph.get_check_spec(k)
        for k in graph.asset_check_keys
        if k.asset_key.path == ["gold", "recommendations"]
    }
    gates = {"every_active_user_has_k", "scores_are_numbers", "one_variant_per_canonical"}
    assert gates <= set(recs) and all(recs[g].blocking for g in gates)
    assert not recs["score_popularity_drift"].blocking  # drift warns, it never stops the publish
    checked = {k.asset_key.to_user_string() for k in graph.asset_check_keys}
    assert checked == {
        "silver/user_events",
        "silver/daily_engagement",
        "silver/flagged_listeners",
        "silver/impressions",
        "gold/als_factors",
        "gold/recommendations",
        "monitoring/ab_analysis",
    }
    srm = next(k for k in graph.asset_check_keys if k.name == "sample_ratio")
    assert not graph.get_check_spec(srm).blocking  # a sample-ratio mismatch warns


def test_lake_maintenance_runs_sundays_for_the_day_before_with_a_stable_run_key() -> None:
    schedule = defs.resolve_schedule_def("weekly_lake_maintenance_schedule")
    assert schedule.cron_schedule == "0 5 * * 0" and schedule.job_name == "lake_maintenance"
    tick = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)  # a Sunday
    [request] = evaluate("weekly_lake_maintenance_schedule", tick)
    assert (request.partition_key, request.run_key) == ("2026-11-28", "lake-maintenance-2026-11-28")
    keys = defs.resolve_job_def("lake_maintenance").asset_layer.executable_asset_keys
    assert {k.to_user_string() for k in keys} == {"monitoring/lake_maintenance"}


def test_retention_runs_daily_for_yesterday_alone() -> None:
    schedule = defs.resolve_schedule_def("retention_schedule")
    assert schedule.cron_schedule == "0 4 * * *" and schedule.job_name == "retention"
    [request] = evaluate("retention_schedule", datetime(2026, 11, 25, 4, 0, tzinfo=UTC))
    assert request.partition_key == "2026-11-24"
    keys = {
        key.to_user_string() for key in defs.resolve_job_def("retention").asset_layer.executable_asset_keys
    }
    assert keys == {"monitoring/retention"}
    monitoring = defs.resolve_job_def("monitoring").asset_layer.executable_asset_keys
    assert {key.to_user_string() for key in monitoring} == {"monitoring/ab_analysis"}


def test_the_cluster_profile_starts_the_daily_schedule_and_the_lag_sensor_on(tmp_path, monkeypatch) -> None:
    from dagster import DefaultScheduleStatus, DefaultSensorStatus

    # Building the cluster profile's definitions points delta-rs at its object store (AWS_* variables):
    # keep that to this test.
    monkeypatch.setattr(os, "environ", os.environ.copy())
    local = defs
    cluster = build_definitions(load_settings(profile="cluster", data={"dir": str(tmp_path)}))
    for built, schedule_status, sensor_status in (
        (local, DefaultScheduleStatus.STOPPED, DefaultSensorStatus.STOPPED),
        (cluster, DefaultScheduleStatus.RUNNING, DefaultSensorStatus.RUNNING),
    ):
        assert built.resolve_schedule_def("daily_schedule").default_status == schedule_status
        assert built.resolve_sensor_def("kafka_lag_sensor").default_status == sensor_status
