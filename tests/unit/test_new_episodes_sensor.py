"""The new-episode sensor through Dagster's sensor context, on a small delta-rs lake (no Spark):
first tick, nothing new, something new, the cursor, and the same work never asked for twice."""

from pathlib import Path

import pandas as pd
from dagster import DagsterInstance, SkipReason, build_sensor_context
from deltalake import write_deltalake

from podrec.lake.paths import table_uri
from resources import LakeResource
from sensors.new_episodes import NewEpisodes, assess, build_new_episodes_sensor


def tick(root: Path, cursor: str | None = None):
    sensor = build_new_episodes_sensor()
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(
            instance=instance, cursor=cursor, resources={"lake": LakeResource(root=str(root))}
        )
        return sensor(context)


def land(root: Path, day: str, episodes: list[str]) -> None:
    frame = pd.DataFrame({"episode_id": episodes, "ingest_date": pd.to_datetime([day] * len(episodes)).date})
    write_deltalake(table_uri(str(root), "bronze", "episodes"), frame, mode="append")


def transcribe(root: Path, episodes: list[str]) -> None:
    write_deltalake(
        table_uri(str(root), "silver", "transcripts"), pd.DataFrame({"episode_id": episodes}), mode="append"
    )


def test_the_decision_is_a_plain_function() -> None:
    assert assess(None) == (False, "bronze/episodes has no snapshot yet")
    assert assess(NewEpisodes(0, "x"))[0] is False
    run, why = assess(NewEpisodes(3, "x"))
    assert run and why.startswith("3 episode(s)")


def test_first_tick_without_a_lake_skips_with_a_reason(tmp_path: Path) -> None:
    result = tick(tmp_path)
    assert not result.run_requests and "no snapshot yet" in result.skip_reason.skip_message


def test_new_episodes_request_the_content_track_once(tmp_path: Path) -> None:
    land(tmp_path, "2026-11-20", ["e1", "e2", "e3"])
    transcribe(tmp_path, ["e1"])
    first = tick(tmp_path)
    (request,) = first.run_requests
    assert request.tags["podrec/new_episodes"] == "2"  # e2 and e3 of the newest snapshot
    assert {k.to_user_string() for k in request.asset_selection} >= {
        "silver/transcripts",
        "gold/episode_similarity",
    }
    # The cursor is bronze's Delta version: an unchanged table is a cheap skip.
    again = tick(tmp_path, cursor=first.cursor)
    assert isinstance(again, SkipReason) and "unchanged since version 0" in again.skip_message
    # Without the cursor the same episodes give the same run key: Dagster never starts it twice.
    assert tick(tmp_path).run_requests[0].run_key == request.run_key


def test_nothing_untranscribed_skips_and_moves_the_cursor(tmp_path: Path) -> None:
    land(tmp_path, "2026-11-20", ["e1", "e2"])
    transcribe(tmp_path, ["e1", "e2"])
    result = tick(tmp_path)
    assert not result.run_requests and "has a transcript" in result.skip_reason.skip_message
    assert result.cursor == "0"
    land(tmp_path, "2026-11-21", ["e1", "e2", "e4"])  # a new day brings e4
    (request,) = tick(tmp_path, cursor=result.cursor).run_requests
    assert request.tags["podrec/new_episodes"] == "1"
