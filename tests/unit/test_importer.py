from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from podrec.ingest.events import encode, validate
from podrec.ingest.importer import (
    IMPORT_PARTITION,
    ImportFormatError,
    check_log,
    count_events,
    log_to_events,
    read_log,
    rejected_rows,
)


def checked(path: Path, text: str):
    path.write_text(text)
    return check_log(*read_log(path))


def test_movielens_style_ratings(tmp_path: Path) -> None:
    log = checked(
        tmp_path / "ratings.csv",
        "userId,movieId,rating,timestamp\n1,10,5.0,964982703\n1,20,1.0,964982224\n2,10,3.0,964981247\n",
    )
    events = list(log_to_events(log))
    assert len(events) == count_events(log) == 7
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
    assert [e["event_id"] for e in log_to_events(log)] == [e["event_id"] for e in events]
    assert log.rejected == []


def test_event_types_from_parquet(tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    stamps = ["2026-11-20T08:00:00Z", "2026-11-20T09:00:00+01:00"]
    log = {"user": ["a", "b"], "item_id": ["x", "y"], "ts": stamps, "event_type": ["complete", "like"]}
    pd.DataFrame(log).to_parquet(path)
    events = list(log_to_events(check_log(*read_log(path))))
    assert [(e["user_id"], e["event_type"], e["occurred_at"].hour) for e in events] == [
        ("a", "complete", 8), ("b", "like", 8),
    ]  # fmt: skip


def test_ids_are_kept_as_written(tmp_path: Path) -> None:
    log = checked(tmp_path / "l.csv", "user,item,ts,event_type\n007,0042,2026-11-20T08:00:00Z,play\n")
    (event,) = log_to_events(log)
    assert (event["user_id"], event["episode_id"]) == ("007", "0042")


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (",10,5.0,964982703", "missing user id"),
        ("NaN,10,5.0,964982703", "missing user id"),
        ("1,,5.0,964982703", "missing item id"),
        ("1,null,5.0,964982703", "missing item id"),
        ("1,10,5.0,", "missing timestamp"),
        ("1,10,5.0,yesterday", "unparsable timestamp: 'yesterday'"),
        ("1,10,,964982703", "missing rating"),
        ("1,10,five,964982703", "rating is not a number: 'five'"),
    ],
)
def test_a_bad_row_is_rejected_with_its_reason_not_reinterpreted(
    tmp_path: Path, row: str, reason: str
) -> None:
    log = checked(tmp_path / "r.csv", f"userId,movieId,rating,timestamp\n2,20,4.0,964982703\n{row}\n")
    assert [(r.row, r.raw, r.reason) for r in log.rejected] == [(2, row, reason)]
    # Only the good row becomes events: play, complete, like for the rating 4.
    assert [e["user_id"] for e in log_to_events(log)] == ["2", "2", "2"] and count_events(log) == 3


def test_a_missing_event_type_is_rejected(tmp_path: Path) -> None:
    log = checked(tmp_path / "t.csv", "user,item,ts,event_type\na,x,2026-11-20T08:00:00Z,\n")
    assert [r.reason for r in log.rejected] == ["missing event_type"]
    assert list(log_to_events(log)) == []


def test_a_row_with_several_problems_is_rejected_once_for_the_first(tmp_path: Path) -> None:
    log = checked(tmp_path / "m.csv", "userId,movieId,rating,timestamp\n,,,\n")
    assert [r.reason for r in log.rejected] == ["missing user id"]
    assert log.reasons() == {"missing user id": 1}


def test_parquet_nulls_are_missing_not_the_string_none(tmp_path: Path) -> None:
    path = tmp_path / "l.parquet"
    frame = {"user": ["a", None], "item": [1, 2], "ts": [964982703, 964982703], "rating": [4.0, None]}
    pd.DataFrame(frame).to_parquet(path)
    log = check_log(*read_log(path))
    assert [(r.row, r.reason) for r in log.rejected] == [(2, "missing user id")]
    assert {e["episode_id"] for e in log_to_events(log)} == {"1"}  # an int id, not "1.0"


def test_rejected_rows_are_shaped_like_bronze_rejected_records(tmp_path: Path) -> None:
    log = checked(tmp_path / "r.csv", "userId,movieId,rating,timestamp\n1,,5.0,964982703\n")
    when = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    frame = rejected_rows(log, "r.csv", when)
    assert list(frame.columns) == [
        "raw", "raw_text", "error", "kafka_partition", "kafka_offset", "received_at", "event_date",
    ]  # fmt: skip
    row = frame.iloc[0]
    assert row["raw_text"] == "1,,5.0,964982703" and row["raw"] == b"1,,5.0,964982703"
    assert row["error"] == "missing item id (imported from r.csv, row 1)"
    assert (row["kafka_partition"], row["kafka_offset"]) == (IMPORT_PARTITION, 1)
    assert row["event_date"] == date(2026, 11, 21)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\n\n", "is empty"),
        (b"just some words without columns\n", "no , ; tab or |"),
        (b"\xff\xfe\x00garbled", "cannot read"),
    ],
)
def test_a_garbled_or_empty_file_is_one_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(content)
    with pytest.raises(ImportFormatError, match=message):
        read_log(path)


def test_a_row_that_does_not_fit_the_header_is_rejected(tmp_path: Path) -> None:
    log = checked(tmp_path / "f.csv", "userId,movieId,rating,timestamp\n1,2,3,4,5\n")
    assert [(r.raw, r.reason) for r in log.rejected] == [("1,2,3,4,5", "5 fields where the header has 4")]


def test_missing_columns_are_named() -> None:
    with pytest.raises(ImportFormatError, match="no item column"):
        check_log(pd.DataFrame({"user": [1], "timestamp": [1], "rating": [1]}))
    with pytest.raises(ImportFormatError, match="rating or an event_type"):
        check_log(pd.DataFrame({"user": [1], "item": [1], "timestamp": [1]}))
