"""What Dagster's catalog shows of podrec's tables (podrec_assets.catalog): column schemas, column
lineage that names real assets and columns, and freshness that turns a day that did not run stale —
evaluated by Dagster's own freshness daemon on a real instance and workspace."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from dagster import AssetKey, AssetMaterialization
from dagster._core.definitions.freshness import FreshnessState, TimeWindowFreshnessPolicy
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget, freeze_time, instance_for_test
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._daemon.freshness import FreshnessDaemon

from podrec.lake.schemas import TABLE_SCHEMAS
from podrec.settings import load_settings
from podrec_assets.catalog import COLUMN_LINEAGE, DAILY_SERVING_PATH
from podrec_assets.definitions import build_definitions

LISTS = AssetKey(["gold", "recommendations"])


@pytest.fixture(scope="module")
def graph():
    return build_definitions(load_settings()).resolve_asset_graph()


def test_every_declared_table_shows_its_columns(graph) -> None:
    for table, schema in TABLE_SCHEMAS.items():
        shown = graph.get(AssetKey(table.split("/"))).metadata["dagster/column_schema"]
        assert [(c.name, c.constraints.nullable) for c in shown.columns] == [
            (f.name, f.nullable) for f in schema.fields
        ], table


def test_column_lineage_names_the_assets_each_table_reads(graph) -> None:
    for table, columns in COLUMN_LINEAGE.items():
        node = graph.get(AssetKey(table.split("/")))
        lineage = node.metadata["dagster/column_lineage"]
        assert set(lineage.deps_by_column) == set(columns) <= set(TABLE_SCHEMAS[table].names)
        for column, deps in lineage.deps_by_column.items():
            for dep in deps:
                assert dep.asset_key in node.parent_keys, (table, column, dep.asset_key)
                source = dep.asset_key.to_user_string()
                if source in TABLE_SCHEMAS:  # the rest are checked against written tables (integration)
                    assert dep.column_name in TABLE_SCHEMAS[source].names, (table, column, dep)


def test_the_daily_path_and_only_it_has_a_freshness_policy(graph) -> None:
    hours = load_settings().checks.stale_after_hours
    for key in graph.get_all_asset_keys():
        policy = graph.get(key).freshness_policy
        if key.to_user_string() in DAILY_SERVING_PATH:
            assert isinstance(policy, TimeWindowFreshnessPolicy), key
            assert policy.fail_window.to_timedelta() == timedelta(hours=hours)
        else:
            assert policy is None, key


def test_a_day_that_did_not_run_shows_stale() -> None:
    """The lists were written at 02:00; the next day's run never happens. Dagster's freshness daemon,
    over the code location as `dagster dev` loads it, says fresh a day later and stale after 26 h."""
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="podrec_assets.definitions", attribute="defs"),
        location_name="podrec",
    )
    ran = datetime(2026, 11, 20, 2, tzinfo=UTC)
    with instance_for_test() as instance:
        with freeze_time(ran):
            instance.report_runless_asset_event(AssetMaterialization(asset_key=LISTS, partition="2026-11-19"))
        with WorkspaceProcessContext(instance, InProcessTestWorkspaceLoadTarget(origin)) as workspace:

            def state_at(hours: float) -> FreshnessState:
                with freeze_time(ran + timedelta(hours=hours)):
                    asyncio.run(FreshnessDaemon()._evaluate_assets(workspace_process_context=workspace))
                return instance.get_freshness_state_records([LISTS])[LISTS].freshness_state

            assert state_at(1) == FreshnessState.PASS
            assert state_at(25) == FreshnessState.PASS
            assert state_at(27) == FreshnessState.FAIL  # the day after did not run: stale in the UI
            never_ran = instance.get_freshness_state_records([AssetKey(["mongo", "serving_version"])])
            assert never_ran[AssetKey(["mongo", "serving_version"])].freshness_state == FreshnessState.UNKNOWN
