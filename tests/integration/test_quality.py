"""Quality gates and drift on the real Spark + Delta lake, run by Dagster's own job machinery:
planted faults fail the right Great Expectations checks, a blocking failure stops the MongoDB
publish, a good day passes every gate and is published, a shifted day is flagged by Evidently."""

import shutil
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    define_asset_job,
    materialize,
)
from pyspark.sql import functions as F

from podrec.lake.delta import read as read_delta
from podrec.lake.delta import replace_partitions
from podrec.serving.publish import active_version
from podrec.settings import PodrecSettings
from podrec_app.screenshots import (
    capture,
    dagster_asset_graph_page,
    dagster_checks_page,
    dagster_ui,
    drift_report_page,
)
from podrec_assets.calendar import Calendar
from podrec_assets.definitions import build_definitions
from resources import LakeResource, MongoResource
from tests.conftest import assets, settings_env
from tests.integration.conftest import END

pytestmark = pytest.mark.integration
DAY = END.isoformat()
SILVER_EVENTS, SILVER_ENGAGEMENT = (
    AssetKey(["silver", "user_events"]),
    AssetKey(["silver", "daily_engagement"]),
)


@dataclass(frozen=True)
class OwnLake:
    settings: PodrecSettings
    resources: dict[str, Any]


@pytest.fixture
def own_lake(lake, tmp_path: Path) -> OwnLake:
    """The shared week-long lake, copied, so planting faults never touches other tests."""
    root = tmp_path / "lake"
    shutil.copytree(lake.resources["lake"].root, root)
    return OwnLake(
        lake.settings.with_(lake={"uri": str(root)}), {**lake.resources, "lake": LakeResource(root=str(root))}
    )


def run(
    lake: OwnLake, selection: AssetSelection, day: str = DAY, instance: DagsterInstance | None = None,
    resources: dict[str, Any] | None = None,
) -> ExecuteInProcessResult:  # fmt: skip
    """One partition of a job over ``selection`` (assets bring their checks), as Dagster runs it."""
    defs = build_definitions(lake.settings)
    job = define_asset_job(
        "under_test", selection=selection, partitions_def=Calendar.from_settings(lake.settings).daily
    )
    definitions = Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=[job],
        resources=resources or lake.resources,
        executor=defs.executor,
    )
    return definitions.resolve_job_def("under_test").execute_in_process(
        instance=instance or DagsterInstance.ephemeral(),
        tags={"dagster/partition": day},
        raise_on_error=False,
    )


def evaluations(result: ExecuteInProcessResult) -> dict[tuple[str, str], object]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def append(spark, uri: str, rows: pd.DataFrame) -> None:
    table = read_delta(spark, uri)
    spark.createDataFrame(rows[table.columns], schema=table.schema).write.format("delta").mode("append").save(
        uri
    )


def day_rows(spark, uri: str, column: str) -> pd.DataFrame:
    return read_delta(spark, uri).where(F.col(column) == F.lit(END)).toPandas()


def test_planted_bad_rows_fail_the_right_checks(own_lake, spark) -> None:
    lake = own_lake.resources["lake"]
    engagement_uri = lake.table("silver", "daily_engagement")
    good = day_rows(spark, engagement_uri, "event_date")
    first = good.iloc[[0]]
    planted = pd.concat(
        [
            first.assign(user_id="planted-null", plays=None),  # a null where a count belongs
            first.assign(user_id="planted-range", max_completion=1.5),  # completion outside [0, 1]
            good.iloc[[1]],  # a duplicate (user, episode, day) key
            first.assign(user_id="planted-orphan", episode_id="ghost-episode"),  # not in the catalog
        ]
    )
    append(spark, engagement_uri, planted)
    events_uri = lake.table("silver", "user_events")
    event = day_rows(spark, events_uri, "event_date").iloc[[0]]
    append(spark, events_uri, event.assign(event_id="orphan-event", episode_id="ghost-episode"))

    result = run(own_lake, AssetSelection.checks_for_assets(SILVER_EVENTS, SILVER_ENGAGEMENT))
    found = evaluations(result)
    expectation_checks = {k: e for k, e in found.items() if not k[1].endswith("_drift")}
    failed = {k for k, e in expectation_checks.items() if not e.passed}
    assert failed == {
        ("silver/daily_engagement", "not_null"),
        ("silver/daily_engagement", "ranges"),
        ("silver/daily_engagement", "unique_keys"),
        ("silver/daily_engagement", "references"),
        ("silver/user_events", "references"),
    }
    assert {k for k, e in expectation_checks.items() if e.passed} >= {
        ("silver/daily_engagement", "schema"), ("silver/user_events", "unique_keys"),
        ("silver/user_events", "ranges"), ("silver/user_events", "schema"),
    }  # fmt: skip
    ranges = found[("silver/daily_engagement", "ranges")]
    assert ranges.metadata["failing_rows"].value == 1 and "1.5" in ranges.metadata["result"].value
    assert ranges.severity == AssetCheckSeverity.ERROR  # blocking: it protects the model and the publish
    assert found[("silver/daily_engagement", "unique_keys")].metadata["failing_rows"].value == 2
    assert "ghost-episode" in found[("silver/user_events", "references")].metadata["result"].value
    assert found[("silver/user_events", "references")].severity == AssetCheckSeverity.WARN
    assert not result.success  # a blocking check failed


def test_a_blocking_failure_stops_the_publish(own_lake, spark) -> None:
    """A client bug reuses an event id: silver keeps both, its blocking key check fails, and nothing
    downstream of silver/user_events runs — engagement is not rebuilt, MongoDB gets no version."""
    lake = own_lake.resources["lake"]
    bronze_uri = lake.table("bronze", "user_events")
    event = day_rows(spark, bronze_uri, "event_date").iloc[[0]]
    at = event["occurred_at"].iloc[0]
    twins = pd.concat(
        [
            event.assign(event_id="reused-id", kafka_offset=10**9, occurred_at=at + timedelta(seconds=1)),
            event.assign(event_id="reused-id", kafka_offset=10**9 + 1, occurred_at=at + timedelta(seconds=2)),
        ]
    )
    append(spark, bronze_uri, twins)
    database = f"gate_{uuid.uuid4().hex[:8]}"
    resources = {
        **own_lake.resources,
        "mongo": MongoResource(uri=own_lake.resources["mongo"].uri, database=database),
    }
    engagement_before = read_delta(spark, lake.table("silver", "daily_engagement")).count()
    try:
        result = run(
            own_lake, AssetSelection.assets(SILVER_EVENTS, SILVER_ENGAGEMENT, ["mongo", "serving_version"]),
            resources=resources,
        )  # fmt: skip
        assert not result.success
        check = evaluations(result)[("silver/user_events", "unique_keys")]
        assert not check.passed and check.severity == AssetCheckSeverity.ERROR
        assert "reused-id" in check.metadata["result"].value
        materialized = {e.materialization.asset_key for e in result.get_asset_materialization_events()}
        assert materialized == {SILVER_EVENTS}
        assert active_version(resources["mongo"].client()[database]) is None
        assert read_delta(spark, lake.table("silver", "daily_engagement")).count() == engagement_before
    finally:
        resources["mongo"].client().drop_database(database)


def test_a_good_day_passes_every_gate_and_is_published(own_lake, settings, tmp_path: Path) -> None:
    """The day's model and lists pass every gate and reach MongoDB; the Dagster UI then shows the asset
    graph with the checks' results, and the drift report opens from its check's link (Chromium)."""
    database = f"gate_{uuid.uuid4().hex[:8]}"
    resources = {
        **own_lake.resources,
        "mongo": MongoResource(uri=own_lake.resources["mongo"].uri, database=database),
    }
    home = tmp_path / "dagster_home"
    home.mkdir()
    selection = AssetSelection.assets(
        ["gold", "als_factors"], ["gold", "recommendations"], ["mongo", "serving_version"]
    ) | AssetSelection.checks(AssetCheckKey(SILVER_ENGAGEMENT, "engagement_drift"))
    try:
        with DagsterInstance.from_config(str(home)) as instance:
            result = run(own_lake, selection, instance=instance, resources=resources)
        assert result.success
        found = evaluations(result)
        gates = {name for asset, name in found if asset == "gold/recommendations"}
        assert gates >= {"every_active_user_has_k", "scores_are_numbers", "one_variant_per_canonical"}
        assert all(found[k].passed for k in found if not k[1].endswith("_drift"))
        assert found[("gold/recommendations", "every_active_user_has_k")].metadata["rows_checked"].value > 100
        assert active_version(resources["mongo"].client()[database]) is not None
    finally:
        resources["mongo"].client().drop_database(database)

    report = found[("silver/daily_engagement", "engagement_drift")].metadata["report"].value
    env = settings_env(settings) | {
        "PODREC_LAKE_URI": own_lake.resources["lake"].root,
        "DAGSTER_HOME": str(home),
    }
    with dagster_ui(env=env) as base:
        shots = capture(
            [dagster_asset_graph_page(base, "gold"), dagster_checks_page(base), drift_report_page(report)],
            tmp_path / "shots",
        )
    graph, checks, drift = shots.values()
    assert "recommendations" in graph.text and "Asset checks" in graph.text and graph.ready >= 4
    assert "every_active_user_has_k" in checks.text and "Passed" in checks.text
    assert "Dataset Drift" in drift.text and "engagement" in drift.text
    assert all(shot.path.stat().st_size > 20_000 for shot in shots.values())


def test_a_shifted_day_is_flagged_and_its_report_kept(own_lake, spark) -> None:
    lake = own_lake.resources["lake"]
    selection = AssetSelection.checks(AssetCheckKey(SILVER_ENGAGEMENT, "engagement_drift"))
    calm = evaluations(run(own_lake, selection))[("silver/daily_engagement", "engagement_drift")]
    assert calm.passed and calm.metadata["drifted_columns"].value == "none"
    report = Path(calm.metadata["report"].value.removeprefix("file://"))
    assert report == Path(lake.root) / "monitoring" / "drift_reports" / DAY / "engagement.html"
    assert report.stat().st_size > 100_000 and report.with_suffix(".json").exists()
    assert calm.metadata["reference_rows"].value > 5 * calm.metadata["current_rows"].value

    # Engagement halved and a surge of Korean listeners on the day.
    uri = lake.table("silver", "daily_engagement")
    day = read_delta(spark, uri).where(F.col("event_date") == F.lit(END))
    korean = F.abs(F.hash("user_id")) % 2 == 0
    shifted = (
        day.withColumn("engagement", F.col("engagement") * 0.5)
        .withColumn("listen_seconds", F.col("listen_seconds") * 0.5)
        .withColumn("locale", F.when(korean, F.lit("ko-KR")).otherwise(F.col("locale")))
    )
    replace_partitions(shifted.localCheckpoint(), uri, "event_date", [DAY])
    before = report.stat().st_mtime
    flagged = evaluations(run(own_lake, selection))[("silver/daily_engagement", "engagement_drift")]
    assert not flagged.passed and flagged.severity == AssetCheckSeverity.WARN
    drifted = set(flagged.metadata["drifted_columns"].value.split(", "))
    assert {"engagement", "listen_seconds", "language"} <= drifted and "plays" not in drifted
    assert report.stat().st_mtime > before  # the report was rewritten for the shifted day


def test_the_ab_analysis_of_a_day_reruns_in_place(own_lake) -> None:
    from deltalake import DeltaTable

    ab_analysis = assets(own_lake.settings, "monitoring/ab_analysis")
    tables = []
    for _ in range(2):
        assert materialize(ab_analysis, partition_key=DAY, resources=own_lake.resources).success
        tables.append(
            DeltaTable(str(Path(own_lake.resources["lake"].root) / "monitoring" / "ab_analysis")).to_pandas()
        )
    first, second = tables
    assert len(first) == len(second) and set(second["day"].astype(str)) == {DAY}  # replaced, not appended
    diff = second[second["level"] == "difference"].set_index("metric")
    assert set(diff.index) == {"engagement_rate", "completion", "session_minutes", "catalog_diversity"}
    assert ((diff["ci_low"] <= diff["value"]) & (diff["value"] <= diff["ci_high"])).all()
    buckets = second[(second["level"] == "bucket") & (second["metric"] == "engagement_rate")]
    arms = second[(second["level"] == "policy") & (second["metric"] == "engagement_rate")].set_index("policy")
    assert buckets["listeners"].sum() == arms["listeners"].sum() == diff.loc["engagement_rate", "listeners"]
    assert set(buckets.loc[buckets["bucket"] < 50, "policy"]) == {"hybrid"}
