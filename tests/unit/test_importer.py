from pathlib import Path

import pandas as pd
import pytest

from podrec.ingest.events import encode, validate
from podrec.ingest.importer import ImportFormatError, count_events, log_to_events, read_log


def test_movielens_style_ratings(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(
        "userId,movieId,rating,timestamp\n1,10,5.0,964982703\n1,20,1.0,964982224\n2,10,3.0,964981247\n"
    )
    df = read_log(path)
    events = list(log_to_events(df))
    assert len(events) == count_events(df) == 7
    kinds = [(e["user_id"], e["episode_id"], e["event_type"]) for e in events]
    assert kinds == [
        ("1", "10", "play"), ("1", "10", "complete"), ("1", "10", "like"),
        ("1", "20", "play"), ("1", "20", "skip"),
        ("2", "10", "play"), ("2", "10", "complete"),
    ]  # fmt: skip
    assert events[4]["position_s"] == 0.0  # a low rating is an early skip: a confident negative
    assert all(validate(encode(e), e["occurred_at"]).error is None for e in events)
    assert events[0]["occurred_at"].isoformat() == "2000-07-30T18:45:03+00:00"
    # Deterministic ids: importing twice yields the same ids, which ingestion deduplicates.
    assert [e["event_id"] for e in log_to_events(df)] == [e["event_id"] for e in events]


def test_event_types_from_parquet(tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    stamps = ["2026-11-20T08:00:00Z", "2026-11-20T09:00:00+01:00"]
    log = {"user": ["a", "b"], "item_id": ["x", "y"], "ts": stamps, "event_type": ["complete", "like"]}
    pd.DataFrame(log).to_parquet(path)
    events = list(log_to_events(read_log(path)))
    assert [(e["user_id"], e["event_type"], e["occurred_at"].hour) for e in events] == [
        ("a", "complete", 8), ("b", "like", 8),
    ]  # fmt: skip


def test_missing_columns_are_named() -> None:
    with pytest.raises(ImportFormatError, match="no item column"):
        list(log_to_events(pd.DataFrame({"user": [1], "timestamp": [1], "rating": [1]})))
    with pytest.raises(ImportFormatError, match="rating or an event_type"):
        list(log_to_events(pd.DataFrame({"user": [1], "item": [1], "timestamp": [1]})))
