"""Listeners reacting to served lists (the loop's simulation) and the loop's resumable state."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from podrec.ingest.events import encode, validate
from podrec.ingest.simulator import Episode, Served, make_users, novelty_lovers, react, taste_matrix
from podrec.settings import load_settings
from podrec_app.loop import LoopFailed, LoopState, load_state, save_state

DAY = date(2026, 11, 10)
AT = datetime(2026, 11, 10, 8, tzinfo=UTC)
EPOCH = date(2026, 11, 1)


def episodes(topic: str, new: bool) -> list[Episode]:
    published = AT - (timedelta(days=1) if new else timedelta(days=200))
    return [
        Episode(f"{topic}-{'new' if new else 'old'}-{r}", "en", topic, 1800, published, 1.0)
        for r in range(10)
    ]


def reactions(users: int, shown: list[Episode], catalog: list[Episode]) -> tuple[list[dict], list]:
    population = [u for u in make_users(users, 3, EPOCH)]
    taste = taste_matrix(3, len(population), sorted({e.topic for e in catalog}))
    served = {u.user_id: Served(f"imp-{u.user_id}", AT, [e.episode_id for e in shown]) for u in population}
    return react(DAY, population, catalog, 3, taste, served), population


def test_plays_from_a_list_carry_its_impression_and_favour_the_top() -> None:
    shown = episodes("Science", new=False)
    events, _ = reactions(2000, shown, shown)
    assert events and all(validate(encode(e), AT + timedelta(days=1)).error is None for e in events)
    assert all(e["impression_id"] == f"imp-{e['user_id']}" for e in events)
    starts = [e for e in events if e["event_type"] == "play" and e["position_s"] == 0]
    rank = {e.episode_id: r for r, e in enumerate(shown, start=1)}
    at_rank = [sum(rank[e["episode_id"]] == r for e in starts) for r in (1, 10)]
    assert at_rank[0] > 3 * at_rank[1]  # looked at with 1 vs 10^-0.8 ≈ 0.16


def test_novelty_lovers_play_new_episodes_of_their_topics_more_readily() -> None:
    new, old = episodes("Science", new=True), episodes("Science", new=False)
    lovers = novelty_lovers(3, 3000)
    assert 0.25 < lovers.mean() < 0.35

    def plays_per_listener(shown: list[Episode], loving: bool) -> float:
        events, population = reactions(3000, shown, new + old)
        who = {u.user_id for u, loves in zip(population, lovers, strict=True) if loves == loving}
        return sum(
            e["event_type"] == "play" and e["position_s"] == 0 and e["user_id"] in who for e in events
        ) / len(who)

    assert plays_per_listener(new, loving=True) > 1.5 * plays_per_listener(old, loving=True)
    assert plays_per_listener(new, loving=False) == pytest.approx(
        plays_per_listener(old, loving=False), rel=0.2
    )


def test_the_loop_resumes_after_its_last_finished_day_and_refuses_another_loop(tmp_path: Path) -> None:
    settings = load_settings(data={"dir": str(tmp_path)})
    fresh = LoopState(users=100, seed=1, warmup_days=7, start="2026-11-08")
    assert load_state(settings, fresh).next_day() == date(2026, 11, 8)
    save_state(
        settings, LoopState(100, 1, 7, "2026-11-08", warmed_up=True, done=["2026-11-08", "2026-11-09"])
    )
    resumed = load_state(settings, fresh)
    assert resumed.warmed_up and resumed.next_day() == date(2026, 11, 10)
    with pytest.raises(LoopFailed, match="same parameters"):
        load_state(settings, LoopState(users=200, seed=1, warmup_days=7, start="2026-11-08"))


def test_a_loop_day_is_one_run_with_the_gates_and_the_sample_ratio_check() -> None:
    from podrec_app.loop import loop_definitions

    graph = loop_definitions(load_settings()).resolve_job_def("loop_day").asset_layer.asset_graph
    assets = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).is_executable}
    assert {
        "bronze/user_events",
        "bronze/impressions",
        "gold/recommendations",
        "mongo/serving_version",
    } <= assets
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert ("gold/recommendations", "every_active_user_has_k") in checks
    assert ("monitoring/ab_analysis", "sample_ratio") in checks
    assert not any("drift" in name for _, name in checks)  # drift reports are the daily job's
