"""The jobs a backfill or a person runs select the right assets, and the daily one runs every check."""

from podrec.settings import load_settings
from podrec_assets.definitions import build_definitions

defs = build_definitions(load_settings())


def test_the_daily_job_spans_the_day_from_events_to_the_publish() -> None:
    job = defs.resolve_job_def("daily")
    keys = {key.to_user_string() for key in job.asset_layer.executable_asset_keys}
    assert keys == {"silver/user_events", "silver/daily_engagement", "silver/flagged_listeners",
                    "silver/impressions", "gold/als_factors", "gold/recommendations", "mongo/serving_version",
                    "monitoring/ab_analysis"}  # fmt: skip


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


def test_the_weekly_and_retention_jobs_select_their_one_asset() -> None:
    for job, table in (
        ("lake_maintenance", "monitoring/lake_maintenance"),
        ("retention", "monitoring/retention"),
        ("monitoring", "monitoring/ab_analysis"),
        ("evaluation", "gold/evaluation"),
    ):
        keys = defs.resolve_job_def(job).asset_layer.executable_asset_keys
        assert {key.to_user_string() for key in keys} == {table}
