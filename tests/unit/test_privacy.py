"""The rules of forgetting and retention that need no lake: what matches an id, which days go."""

import json
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from podrec.privacy import _carries, forget_in_models, retention_cutoff, user_hash


def test_raw_text_carries_an_id_only_as_a_whole_token() -> None:
    assert _carries('{"user_id":"u1","episode_id":"e9"}', "u1")
    assert _carries("u1,e9,2026-11-20T08:00:00Z,play", "u1")
    assert not _carries('{"user_id":"u10"}', "u1")
    assert not _carries('{"user_id":"au1"}', "u1")
    assert _carries("listener a.b@x says hi", "a.b@x")
    assert not _carries(None, "u1")


def test_the_audit_keeps_a_hash_not_the_id() -> None:
    assert (
        user_hash("u1") == "bb82030dbc2bcaba32a90bf2e207a84a856fc5f033b77c480836ab6f77f40f19"
    )  # sha256 of the id's UTF-8 bytes
    assert user_hash("u1") != user_hash("u2")


def test_retention_keeps_event_days_including_the_run_day() -> None:
    # 400 days up to 2027-01-10 inclusive start on 2025-12-07: everything before it goes.
    assert retention_cutoff(date(2027, 1, 10), 400) == date(2025, 12, 7)
    assert retention_cutoff(date(2026, 11, 20), 1) == date(2026, 11, 20)


def write(path: Path, rows: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows), path)


def factors(folder: Path) -> list[int]:
    return sorted(r["id"] for p in folder.glob("*.parquet") for r in pq.read_table(p).to_pylist())


def test_a_model_with_an_id_table_loses_the_listeners_row_and_factors(tmp_path: Path) -> None:
    model = tmp_path / "gold" / "als_models" / "model_date=2026-11-20"
    write(model / "users" / "part-0.parquet", {"user_id": ["a", "b", "c"], "user_idx": [0, 1, 2]})
    write(model / "als" / "userFactors" / "part-0.parquet",
          {"id": pa.array([0, 1, 2], pa.int32()), "features": [[0.1], [0.2], [0.3]]})  # fmt: skip
    (model / "als" / "userFactors" / ".part-0.parquet.crc").write_bytes(b"stale")
    assert forget_in_models(str(tmp_path), "b") == {"gold/als_models/model_date=2026-11-20": 1}
    assert pq.read_table(model / "users").to_pydict() == {"user_id": ["a", "c"], "user_idx": [0, 2]}
    assert factors(model / "als" / "userFactors") == [0, 2]
    assert not (model / "als" / "userFactors" / ".part-0.parquet.crc").exists()  # it would no longer match
    assert forget_in_models(str(tmp_path), "b") == {"gold/als_models/model_date=2026-11-20": 0}


def test_a_fitted_pipeline_keeps_every_other_listeners_index(tmp_path: Path) -> None:
    model = tmp_path / "gold" / "als_models" / "model_date=2026-11-20"
    for stage, column in (("0_StringIndexer_u", "user_id"), ("1_StringIndexer_i", "episode_id")):
        meta = model / "stages" / stage / "metadata" / "part-00000-x-c000.txt"
        meta.parent.mkdir(parents=True)
        meta.write_text(json.dumps({"paramMap": {"inputCol": column}}) + "\n")
    labels = {"labelsArray": [[["a", "b", "c"]]]}
    write(model / "stages" / "0_StringIndexer_u" / "data" / "part-0.parquet", labels)
    write(
        model / "stages" / "1_StringIndexer_i" / "data" / "part-0.parquet", labels
    )  # episodes named a, b, c
    write(model / "stages" / "2_ALS_x" / "userFactors" / "part-0.parquet",
          {"id": pa.array([0, 1, 2], pa.int32()), "features": [[0.1], [0.2], [0.3]]})  # fmt: skip
    write(model / "stages" / "2_ALS_x" / "itemFactors" / "part-0.parquet",
          {"id": pa.array([0, 1, 2], pa.int32()), "features": [[0.1], [0.2], [0.3]]})  # fmt: skip
    assert forget_in_models(str(tmp_path), "b") == {"gold/als_models/model_date=2026-11-20": 1}
    users = pq.read_table(model / "stages" / "0_StringIndexer_u" / "data").to_pylist()
    assert users == [{"labelsArray": [["a", "__forgotten__/1", "c"]]}]
    episodes = pq.read_table(model / "stages" / "1_StringIndexer_i" / "data").to_pylist()
    assert episodes == [{"labelsArray": [["a", "b", "c"]]}]  # the episode indexer is left alone
    assert factors(model / "stages" / "2_ALS_x" / "userFactors") == [0, 2]
    assert factors(model / "stages" / "2_ALS_x" / "itemFactors") == [0, 1, 2]


def test_every_table_that_holds_listeners_is_trimmed_by_the_retention() -> None:
    """LISTENER_TABLES is every contract table with a listener column, each by its date partition."""
    from podrec.lake import schemas
    from podrec.lake.tables import CONTRACT_TABLES
    from podrec.privacy import LISTENER_TABLES
    from podrec.recsys.bursts import FLAGGED_LISTENERS, TABLE

    by_table = {
        "bronze/user_events": schemas.VALIDATED_RECORD,
        "bronze/impressions": schemas.VALIDATED_IMPRESSION,
        "silver/impressions": schemas.SILVER_IMPRESSIONS,
        "silver/daily_engagement": schemas.SILVER_DAILY_ENGAGEMENT,
        "gold/als_factors": schemas.GOLD_ALS_FACTORS,
        "gold/recommendations": schemas.GOLD_RECOMMENDATIONS,
    }
    for table, schema in by_table.items():
        assert table in CONTRACT_TABLES
        names = set(schema.fieldNames())
        assert {"user_id"} <= names or {"side", "id"} <= names, table
        assert LISTENER_TABLES[tuple(table.split("/"))] in names, table
    # Rejected records carry listeners in their raw text; silver events are bronze's, cleaned.
    for table in ("bronze/user_events_rejected", "bronze/impressions_rejected", "silver/user_events"):
        assert LISTENER_TABLES[tuple(table.split("/"))] == "event_date"
    # Flagged listeners are kept by their id's hash (podrec/recsys/bursts.py), dated by the flag's day.
    assert "user_sha256 string" in FLAGGED_LISTENERS and LISTENER_TABLES[TABLE] in FLAGGED_LISTENERS


def test_a_preview_for_metadata_holds_no_listener_id_and_no_reason() -> None:
    import pandas as pd

    from podrec.privacy import masked_listeners

    preview = pd.DataFrame(
        {
            "user_id": ["u1", "__popular__/en"],
            "rank": [1, 1],
            "reason": ["similar to “X” you listened to", ""],
        }
    )
    out = masked_listeners(preview)
    assert list(out.columns) == ["user_id", "rank"]
    assert out["user_id"].tolist() == [f"sha256:{user_hash('u1')[:12]}", "__popular__/en"]
