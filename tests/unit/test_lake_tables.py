"""`podrec tables`: every contract table's URI, Delta version, rows and newest partition, from the log."""

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from podrec.lake.delta import append_arrow, replace_partitions_arrow
from podrec.lake.paths import table_uri
from podrec.lake.tables import CONTRACT_TABLES, TableState, describe
from podrec.privacy import AUDIT, SUPPRESSED
from podrec.quality.suites import SUITES
from podrec.settings import load_settings
from podrec_app.cli import main


@pytest.fixture
def lake(tmp_path: Path) -> str:
    """Three tables written with the lake's own helpers; the rest not written yet."""
    root = str(tmp_path / "lake")
    events = table_uri(root, "silver", "user_events")
    day = pd.DataFrame({"user_id": ["u1", "u2"], "event_date": [date(2026, 11, 20)] * 2})
    append_arrow(day, events, "event_date")  # version 0: 2 rows on the 20th
    later = pd.DataFrame({"user_id": ["u1", "u3", "u4"], "event_date": [date(2026, 11, 21)] * 3})
    append_arrow(later, events, "event_date")  # version 1: 3 more on the 21st
    again = pd.DataFrame({"user_id": ["u9"], "event_date": [date(2026, 11, 20)]})
    replace_partitions_arrow(again, events, "event_date", ["2026-11-20"])  # version 2: the 20th is 1 row
    episodes = pd.DataFrame({"episode_id": ["e1", "e2", "e3", "e4"], "language": ["en", "it", "en", "ko"]})
    append_arrow(episodes, table_uri(root, "silver", "episodes"))  # unpartitioned, version 0
    empty = pd.DataFrame({"day": pd.Series([], dtype="object"), "x": pd.Series([], dtype="int64")})
    append_arrow(empty, table_uri(root, "monitoring", "ab_analysis"))  # created, no rows
    return root


def test_each_table_says_version_rows_and_newest_day(lake: str) -> None:
    states = {t.name: t for t in describe(lake)}
    assert [t for t in states] == list(CONTRACT_TABLES)
    assert states["silver/user_events"] == TableState(
        "silver/user_events", f"{lake}/silver/user_events", 2, 1 + 3, "2026-11-21"
    )
    assert states["silver/episodes"] == TableState("silver/episodes", f"{lake}/silver/episodes", 0, 4, None)
    assert states["monitoring/ab_analysis"].rows == 0
    assert states["monitoring/ab_analysis"].newest_partition is None
    missing = states["gold/recommendations"]
    assert missing.missing and (missing.version, missing.rows, missing.newest_partition) == (None, None, None)
    assert missing.uri == f"{lake}/gold/recommendations"


def test_the_json_shape_is_stable(lake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODREC_LAKE_URI", lake)
    result = CliRunner().invoke(main, ["tables", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert list(out) == ["tables"]
    assert [t["name"] for t in out["tables"]] == list(CONTRACT_TABLES)
    assert all(list(t) == ["name", "uri", "version", "rows", "newest_partition"] for t in out["tables"])
    (events,) = [t for t in out["tables"] if t["name"] == "silver/user_events"]
    assert events == {
        "name": "silver/user_events",
        "uri": f"{lake}/silver/user_events",
        "version": 2,
        "rows": 4,
        "newest_partition": "2026-11-21",
    }
    (missing,) = [t for t in out["tables"] if t["name"] == "gold/evaluation"]
    assert (missing["version"], missing["rows"], missing["newest_partition"]) == (None, None, None)


def test_the_table_view_marks_missing_tables(lake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODREC_LAKE_URI", lake)
    result = CliRunner().invoke(main, ["tables"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()[2:]}
    assert lines["silver/user_events"][:4] == ["silver/user_events", "2", "4", "2026-11-21"]
    assert lines["gold/als_factors"][:4] == ["gold/als_factors", "missing", "-", "-"]


def test_every_delta_table_of_the_code_location_is_a_contract_table() -> None:
    """A new Delta asset (or a table written outside an asset) must join the list `podrec tables` shows."""
    from podrec_assets.definitions import build_definitions

    graph = build_definitions(load_settings()).resolve_asset_graph()
    delta_assets = {k.to_user_string() for k in graph.get_all_asset_keys() if "delta" in graph.get(k).kinds}
    outside_assets = {"/".join(AUDIT), "/".join(SUPPRESSED)}  # written by `podrec forget`
    assert delta_assets | outside_assets == set(CONTRACT_TABLES)
    assert {f"{s.layer}/{s.name}" for s in SUITES} <= set(CONTRACT_TABLES)
