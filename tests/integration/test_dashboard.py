"""The dashboard's queries on a small real Delta lake (written by delta-rs, read by DuckDB), the
Streamlit script run by Streamlit's own test harness, and both UIs in headless Chromium."""

import os
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from deltalake import write_deltalake

from dashboard import queries
from podrec.lake.paths import table_uri
from podrec.recsys.ab_analysis import COLUMNS
from podrec.recsys.ab_readout import Estimate, Readout, Srm, readout_rows
from podrec_app.screenshots import (
    api_and_dashboard,
    api_docs_page,
    capture,
    dashboard_ab_page,
    dashboard_page,
)

pytestmark = pytest.mark.integration

D10, D18, D19, D20 = date(2026, 11, 10), date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def events() -> pd.DataFrame:
    rows = [  # (user, type, when): the newest event is 11-20 12:00
        ("u1", "play", at(20, 11, 30)), ("u1", "complete", at(20, 12)), ("u2", "like", at(20, 11, 10)),
        ("u2", "play", at(20, 10, 30)), ("u3", "skip", at(19, 13)), ("u3", "play", at(19, 11)),
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["user_id", "event_type", "occurred_at"])
    frame["event_id"] = [f"ev{i}" for i in range(len(frame))]
    frame["episode_id"] = "e1"
    frame["session_id"] = [f"s{i}" for i in range(len(frame))]
    # u1's play came from impression i1 (e1 was on it); u2's play from a list that did not hold e1.
    frame["impression_id"] = ["i1", None, None, "i2", None, None]
    frame["event_date"] = frame["occurred_at"].dt.date
    return frame


def engagement() -> pd.DataFrame:
    rows = [  # user, episode, day, plays, max_completion, engagement, locale
        ("u1", "e1", D20, 1, 1.0, 3.0, "en-US"),
        ("u2", "e1", D20, 1, 0.5, 0.5, "it-IT"),
        ("u2", "e2", D20, 1, 0.02, -1.0, "it-IT"),
        ("u3", "e2", D19, 1, 0.01, -1.0, "en"),
        ("u4", "e3", date(2026, 11, 10), 1, 0.9, 2.0, "en"),  # outside a 7-day window
    ]
    return pd.DataFrame(
        rows,
        columns=["user_id", "episode_id", "event_date", "plays", "max_completion", "engagement", "locale"],
    )


def episodes() -> pd.DataFrame:
    # e1 appeared on 11-18 (after the first snapshot): new for the window; the rest are back catalogue.
    frame = pd.DataFrame(
        [("e1", "c1", "en", "One", "Show A", D18), ("e1it", "c1", "it", "Uno", "Show A", D18),
         ("e2", "c2", "en", "Two", "Show B", D10), ("e3", "c3", "en", "Three", "Show B", D10)],
        columns=["episode_id", "canonical_episode_id", "language", "title", "feed_title", "first_seen_date"],
    )  # fmt: skip
    frame["published_at"] = pd.Timestamp("2026-11-01", tz="UTC")
    return frame


def impressions() -> pd.DataFrame:
    rows = [  # impression, user, policy, bucket, [episodes], day
        ("i1", "u1", "hybrid", 10, ["e1", "e2"], D20),
        ("i2", "u2", "als_only", 70, ["e3"], D20),
        ("i3", "u2", "als_only", 70, ["e3"], D19),
        ("i4", "u3", "hybrid", 20, ["e1it"], D19),
        ("i0", "u4", "als_only", 80, ["e3"], date(2026, 11, 10)),  # outside a 7-day window
    ]
    return pd.DataFrame(
        [{"impression_id": i, "user_id": u, "policy": p, "bucket": b, "rank": r + 1, "episode_id": e,
          "event_date": day} for i, u, p, b, items, day in rows for r, e in enumerate(items)]
    ).astype({"bucket": "int32"})  # fmt: skip


def recommendations() -> pd.DataFrame:
    rows = [  # user, policy, bucket, [(episode, canonical, score)], day
        ("u1", "hybrid", 10, [("e2", "c2", 0.9), ("e3", "c3", 0.5)], D20),
        ("u2", "als_only", 70, [("e3", "c3", 0.8)], D20),
        ("u3", "hybrid", 20, [("e1it", "c1", 0.7)], D20),
        ("u4", "als_only", 80, [("e3", "c3", 0.6)], D20),
        ("__popular__/en", "popular", None, [("e1", "c1", 1.0)], D20),
        ("u1", "hybrid", 10, [("e1", "c1", 0.1)], D19),  # an older day: never shown
    ]
    flat = [
        {"user_id": u, "policy": p, "bucket": b, "rank": r + 1, "episode_id": e, "canonical_episode_id": c,
         "score": s, "rec_date": day}
        for u, p, b, items, day in rows for r, (e, c, s) in enumerate(items)
    ]  # fmt: skip
    return pd.DataFrame(flat).astype({"bucket": "Int32"})


def evaluation() -> pd.DataFrame:
    rows = []
    for evaluated_at, scale in ((at(20, 1), 0.5), (at(20, 2), 1.0)):  # the later run is the one shown
        for policy, cold, ndcg, recall in (("hybrid", "factor", 0.3, 0.4), ("als_only", "-", 0.25, 0.35)):
            for metric, value in (("ndcg", ndcg * scale), ("recall", recall * scale)):
                rows.append(("time", policy, cold, metric, 10, value, 449, evaluated_at, D20))
    return pd.DataFrame(rows, columns=["protocol", "policy", "cold_start", "metric", "k", "value", "users",
                                       "evaluated_at", "eval_date"])  # fmt: skip


@pytest.fixture(scope="module")
def lake_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = str(tmp_path_factory.mktemp("dashboard") / "lake")
    for (layer, name), frame in {
        ("silver", "user_events"): events(),
        ("silver", "daily_engagement"): engagement(),
        ("silver", "episodes"): episodes(),
        ("silver", "impressions"): impressions(),
        ("gold", "recommendations"): recommendations(),
        ("gold", "evaluation"): evaluation(),
        ("monitoring", "ab_analysis"): ab_analysis(),
    }.items():
        write_deltalake(table_uri(root, layer, name), frame)
    reports = Path(table_uri(root, "monitoring", "drift_reports"))
    for day, stamp in (("2026-11-19", 1_700_000_000), ("2026-11-20", 1_700_100_000)):
        (reports / day).mkdir(parents=True)
        (reports / day / "engagement.html").write_text(f"<html><body>drift {day}</body></html>")
        os.utime(reports / day / "engagement.html", (stamp, stamp))
    return root


def ab_analysis() -> pd.DataFrame:
    """Two days of the experiment readout, as monitoring/ab_analysis holds it."""
    frames = []
    for day, low in ((date(2026, 11, 19), -0.1), (date(2026, 11, 20), 0.05)):
        metrics = {"new_episode_plays": Estimate(0.3, low, 0.5, 0.8, 0.5),
                   "plays_per_impression": Estimate(0.01, -0.02, 0.04, 0.2, 0.19)}  # fmt: skip
        result = Readout(date(2026, 11, 19), day, metrics, Srm(0.62, 990, 1010, 0.5))
        frames += [readout_rows(result, day, scope, COLUMNS) for scope in ("day", "experiment")]
    return pd.concat(frames, ignore_index=True)


def test_the_ab_section_reads_the_experiment_so_far(lake_root: str) -> None:
    lake = queries.open_dashboard_lake(lake_root)
    readout = queries.experiment_readout(lake).set_index("metric")
    assert readout.loc["new_episode_plays", ["hybrid", "als_only", "difference", "low", "high"]].tolist() == [
        0.8, 0.5, 0.3, 0.05, 0.5,
    ]  # fmt: skip
    assert queries.sample_ratio(lake).iloc[-1][["p_value", "hybrid", "als_only"]].tolist() == [
        0.62,
        990,
        1010,
    ]
    assert queries.daily_difference(lake, "new_episode_plays")["low"].tolist() == [-0.1, 0.05]


def test_engagement_windows_end_at_the_newest_event(lake_root: str) -> None:
    lake = queries.open_dashboard_lake(lake_root)
    assert lake.missing == []
    hour = queries.activity(lake, 1).iloc[0]
    assert hour["newest"] == pd.Timestamp(at(20, 12))
    assert [hour[c] for c in ("events", "listeners", "plays", "completes", "likes", "skips")] == [
        3,
        2,
        1,
        1,
        1,
        0,
    ]
    day = queries.activity(lake, 24).iloc[0]
    assert [day[c] for c in ("events", "listeners", "plays", "completes", "likes", "skips")] == [
        5,
        3,
        2,
        1,
        1,
        1,
    ]
    assert queries.events_per_hour(lake, 24)["events"].sum() == 5


def test_arm_metrics_use_the_newest_lists(lake_root: str) -> None:
    lake = queries.open_dashboard_lake(lake_root)
    arms = queries.arm_metrics(lake, days=7).set_index("policy")
    assert arms.loc["hybrid", "listeners"] == 2 and arms.loc["als_only", "listeners"] == 2
    assert "engagement_rate" not in arms  # 100% by construction: every listener with a list engaged
    assert arms.loc["hybrid", "completion"] == pytest.approx((1.0 + 0.01) / 2)
    assert arms.loc["als_only", "completion"] == pytest.approx((0.5 + 0.02) / 2)  # u4 is outside 7 days
    assert (
        arms.loc["hybrid", "catalog_diversity"] == 1.0 and arms.loc["als_only", "catalog_diversity"] == 1 / 3
    )


def test_bucket_plays_are_per_arm_and_bucket_from_served_lists(lake_root: str) -> None:
    lake = queries.open_dashboard_lake(lake_root)
    buckets = queries.bucket_plays(lake, days=7, new_episode_days=7)
    columns = ["policy", "bucket", "listeners", "impressions", "list_plays", "new_episode_plays"]
    # Bucket 10: u1 played e1 from i1. Bucket 70: u2 played e1, not on i2 — not a list play; e1 is new
    # (appeared 11-18), so it is a new-episode play for u2's arm. Bucket 20: u3 played e1 on 11-19, new.
    # Bucket 80 (u4) is outside the window.
    assert buckets[columns].values.tolist() == [
        ["hybrid", 10, 1, 1, 1, 1], ["hybrid", 20, 1, 1, 0, 1], ["als_only", 70, 1, 2, 0, 1],
    ]  # fmt: skip
    assert buckets["plays_per_impression"].tolist() == [1.0, 0.0, 0.0]
    arms = queries.arm_plays(buckets).set_index("policy")
    assert arms.loc["hybrid", "plays_per_impression"] == 0.5 and arms.loc["als_only", "impressions"] == 2
    assert arms.loc["hybrid", "new_episode_plays_per_listener"] == 1.0


def test_top_episodes_scores_and_evaluation(lake_root: str) -> None:
    lake = queries.open_dashboard_lake(lake_root)
    top = queries.top_episodes(lake, per_language=5, days=1)
    assert top[["language", "place", "episode_id", "title"]].values.tolist() == [
        ["en", 1, "e1", "One"], ["it", 1, "e1", "One"], ["it", 2, "e2", "Two"],
    ]  # fmt: skip
    scores = queries.score_distribution(lake)
    assert sorted(scores["score"]) == [0.5, 0.6, 0.7, 0.8, 0.9]  # the newest day, no popular list
    table = queries.evaluation(lake).set_index("policy")
    assert table.loc["hybrid", "ndcg"] == 0.3 and table.loc["als_only", "recall"] == 0.35
    reports = queries.drift_reports(lake_root)
    assert [r.day for r in reports] == ["2026-11-20", "2026-11-19"]
    assert reports[0].read_text() == "<html><body>drift 2026-11-20</body></html>"


def test_a_lake_without_tables_says_what_is_missing(tmp_path: Path) -> None:
    lake = queries.open_dashboard_lake(str(tmp_path / "empty"))
    assert sorted(lake.missing) == sorted(queries.TABLES)
    assert queries.drift_reports(str(tmp_path / "empty")) == []


def test_the_streamlit_script_renders_every_section(lake_root: str, monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("PODREC_LAKE_URI", lake_root)
    app = AppTest.from_file(str(Path(queries.__file__).with_name("app.py")), default_timeout=60).run()
    assert not app.exception, app.exception
    assert [h.value for h in app.header] == [
        "Engagement", "A/B arms", "Top episodes by listener language", "Recommendation scores",
        "Offline evaluation", "Drift reports",
    ]  # fmt: skip
    assert [m.value for m in app.metric][:5] == ["3", "2", "1", "1", "1"]  # last hour
    assert [s.value for s in app.subheader] == ["The experiment so far: hybrid - als_only"]
    assert "Sample ratio: hybrid 990 / als_only 1,010 listeners" in app.success[0].value
    assert len(app.expander) == 2  # one per drift report


def test_dashboard_and_api_docs_render_in_headless_chromium(lake_root: str, tmp_path: Path) -> None:
    env = {**os.environ, "PODREC_LAKE_URI": lake_root}
    with api_and_dashboard(env=env) as (api, board):
        shots = capture(
            [dashboard_page(board, min_charts=6), dashboard_ab_page(board), api_docs_page(api)], tmp_path
        )
    dash, docs = shots["dashboard"], shots["api-docs"]
    assert dash.ready >= 6 and dash.failed == 0
    assert "Last hour" in dash.text and "Plays from lists per impression per bucket" in dash.text
    assert "Sample ratio" in shots["dashboard-ab"].text and shots["dashboard-ab"].failed == 0
    # health, ready, metrics, the impression counts, a listener's list, an episode's neighbours
    assert docs.ready == 6 and "/users/{user_id}/recommendations" in docs.text and "/metrics" in docs.text
    assert "Authorize" in docs.text  # the bearer scheme, so a developer can try a route with a token
    for shot in shots.values():
        assert shot.path.stat().st_size > 20_000  # a picture with content, not a blank page
