"""The experiment readout: sample-ratio test, CUPED, ratio intervals, new-episode exposure, IPS."""

from datetime import UTC, date, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from podrec.recsys.ab import assign
from podrec.recsys.ab_analysis import COLUMNS
from podrec.recsys.ab_readout import cuped, ratio, readout, readout_rows, srm
from podrec.recsys.off_policy import estimate, list_values
from podrec.settings import AbSettings
from podrec_assets.monitoring import sample_ratio_result

AB = AbSettings(experiment_id="exp-readout", hybrid_buckets=50)
DAY = date(2026, 11, 10)
AT = datetime(2026, 11, 10, 12, tzinfo=UTC)


def arm(user_id: str) -> tuple[int, str]:
    return assign(user_id, AB)


def listeners_split(hybrid: int, als_only: int) -> list[str]:
    """Listener ids whose sticky arms are ``hybrid`` and ``als_only`` in number."""
    ids = (f"u{i}" for i in range(100_000))
    wanted = {"hybrid": hybrid, "als_only": als_only}
    out = []
    for user_id in ids:
        policy = arm(user_id)[1]
        if wanted[policy]:
            wanted[policy] -= 1
            out.append(user_id)
        if not any(wanted.values()):
            return out
    raise AssertionError("not enough ids")


def lake(users: list[str], new_plays: dict[str, int] | None = None) -> duckdb.DuckDBPyConnection:
    """DuckDB tables shaped like the silver views: each listener served one list of two episodes on DAY,
    e-new (appeared that morning) at rank 1 and e-old at rank 2; ``new_plays`` of them play e-new from it."""
    new_plays = new_plays or {}
    con = duckdb.connect()
    episodes = pd.DataFrame(
        {"episode_id": ["e-new", "e-old"], "first_seen_date": [DAY, date(2026, 1, 1)],
         "published_at": [AT - timedelta(hours=3), AT - timedelta(days=300)]}
    )  # fmt: skip
    impressions = pd.DataFrame(
        [(f"i-{u}", u, "exp-readout", arm(u)[1], AT, r, e, DAY)
         for u in users for r, e in ((1, "e-new"), (2, "e-old"))],
        columns=["impression_id", "user_id", "experiment_id", "policy", "served_at", "rank", "episode_id",
                 "event_date"],
    )  # fmt: skip
    events = pd.DataFrame(
        [(u, "e-new", f"i-{u}", f"s-{u}-{k}", AT + timedelta(minutes=5 + k), "play", DAY)
         for u in users for k in range(new_plays.get(u, 0))]
        + [(u, "e-old", None, f"o-{u}", AT, "play", DAY) for u in users],
        columns=["user_id", "episode_id", "impression_id", "session_id", "occurred_at", "event_type",
                 "event_date"],
    )  # fmt: skip
    engagement = pd.DataFrame(
        [(u, "e-old", 1.0, 1, 0.5, d) for u in users for d in (DAY - timedelta(days=1), DAY)],
        columns=["user_id", "episode_id", "engagement", "plays", "max_completion", "event_date"],
    )
    for name, frame in (("episodes", episodes), ("impressions", impressions), ("events", events),
                        ("engagement", engagement)):  # fmt: skip
        con.register(name, frame)
    return con


def test_the_sample_ratio_test_flags_a_planted_55_45_split() -> None:
    # 2,000 listeners split 55/45 against an expected 50/50: chi2 = (100² + 100²)/1000 = 20, p ≈ 7.7e-6.
    assert srm(1100, 900, 0.5).p_value == pytest.approx(7.74e-6, rel=0.01)
    assert srm(1010, 990, 0.5).p_value > 0.5
    planted = readout(lake(listeners_split(1100, 900)), DAY, DAY, arm, 0.5, 7, 7)
    assert (planted.srm.hybrid, planted.srm.als_only) == (1100, 900) and planted.srm.p_value < 0.001
    rows = readout_rows(planted, DAY, "experiment", COLUMNS)
    flagged = sample_ratio_result(rows, 0.001)
    assert not flagged.passed and flagged.severity.value == "WARN"
    balanced = readout_rows(
        readout(lake(listeners_split(500, 500)), DAY, DAY, arm, 0.5, 7, 7), DAY, "day", COLUMNS
    )
    assert sample_ratio_result(balanced, 0.001).passed


def test_plays_of_new_episodes_and_plays_per_impression_per_arm() -> None:
    users = listeners_split(40, 40)
    # Every hybrid listener plays the new episode from their list twice (two sessions), no als_only one does.
    result = readout(lake(users, {u: 2 for u in users if arm(u)[1] == "hybrid"}), DAY, DAY, arm, 0.5, 7, 7)
    new = result.metrics["new_episode_plays"]
    assert (new.hybrid, new.als_only, new.difference) == pytest.approx((2.0, 0.0, 2.0))
    from_lists = result.metrics["new_episode_list_plays"]  # every one of those plays came from the list
    assert (from_lists.hybrid, from_lists.als_only) == pytest.approx((2.0, 0.0))
    per_impression = result.metrics["plays_per_impression"]
    assert (per_impression.hybrid, per_impression.als_only) == pytest.approx(
        (1.0, 0.0)
    )  # one list, one episode
    weighted = result.metrics["plays_per_impression_weighted"]
    assert weighted.hybrid == pytest.approx(1.0)  # played at rank 1: weight 1/log2(2)
    first_play = result.metrics["hours_to_first_play"]
    # e-new appeared at 09:00 and hybrid listeners played it at 12:05; als_only never: 15 h to the day's end.
    assert first_play.hybrid == pytest.approx(3 + 5 / 60) and first_play.als_only == pytest.approx(15.0)
    assert result.metrics["hours_to_first_impression"].difference == pytest.approx(0.0)


def test_the_catalogs_first_snapshot_is_not_new_for_its_first_days() -> None:
    """The first snapshot holds the back catalogue, all first seen that day: e-old (published 300 days
    ago) first seen two days before DAY is not new, so its organic plays on DAY are not new-episode
    plays; e-new, first seen after the first snapshot, still is."""
    users = listeners_split(20, 20)
    con = lake(users, {u: 2 for u in users if arm(u)[1] == "hybrid"})
    episodes = pd.DataFrame(
        {"episode_id": ["e-new", "e-old"], "first_seen_date": [DAY, DAY - timedelta(days=2)],
         "published_at": [AT - timedelta(hours=3), AT - timedelta(days=300)]}
    )  # fmt: skip
    con.unregister("episodes")
    con.register("episodes", episodes)
    new = readout(con, DAY, DAY, arm, 0.5, 7, 7).metrics["new_episode_plays"]
    assert (new.hybrid, new.als_only) == pytest.approx((2.0, 0.0))  # e-old's one play each is not counted


def test_cuped_keeps_the_mean_and_removes_what_the_covariate_explains() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(10, 3, 5000)
    y = 2 * x + rng.normal(0, 1, 5000)
    adjusted = cuped(y, x)
    assert adjusted.mean() == pytest.approx(y.mean())
    assert adjusted.var() < 0.03 * y.var()  # var(y) ≈ 37, of which 36 is the covariate's


def test_cuped_with_several_covariates_fits_them_together_and_ignores_a_constant_one() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 3, (5000, 2))
    y = 2 * x[:, 0] - 3 * x[:, 1] + rng.normal(0, 1, 5000)  # var ≈ 4·9 + 9·9 + 1 = 118
    x_and_constant = np.column_stack([x, np.full(5000, 7.0)])
    adjusted = cuped(y, x_and_constant)
    assert adjusted.mean() == pytest.approx(y.mean())
    assert adjusted.var() == pytest.approx(1.0, rel=0.1)  # only the noise is left
    one = cuped(y, x[:, 0])  # the first covariate alone removes its own part: 118 - 36 ≈ 82
    assert one.var() == pytest.approx(82, rel=0.1)


def test_a_ratio_of_sums_gets_a_delta_method_variance() -> None:
    # Plays 1,1,2,0 over impressions 2,2,2,2: r = 4/8. cov terms: var(p) = 2/3, cov = 0, var(i) = 0
    # → var(r) = (2/3) / (4 · 2²) = 1/24.
    r, var = ratio(np.array([1.0, 1, 2, 0]), np.array([2.0, 2, 2, 2]))
    assert (r, var) == pytest.approx((0.5, 1 / 24))


def items(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["impression_id", "rank", "propensity", "explored", "plays"])


def test_inverse_propensities_weigh_each_list_by_what_the_candidate_would_have_shown() -> None:
    share = 0.25
    logged = items([
        ("a", 1, 1.0, False, 1), ("a", 2, 0.75, False, 1),    # the policy's item kept in the exploring place
        ("b", 1, 1.0, False, 0), ("b", 2, 0.125, True, 1),    # explored: 0.25 · 1 of 2 new episodes
        ("c", 1, None, None, 5),                              # no propensity logged: not counted
    ])  # fmt: skip
    values = list_values(logged, share)
    # explore_always: a = 1 + 0 (its policy item weighs 0), b = 0 + 1/0.25; never_explore: a = 1 + 1/0.75.
    assert values.loc["a", "explore_always"] == 1 and values.loc["b", "explore_always"] == 4
    assert (
        values.loc["a", "never_explore"] == pytest.approx(1 + 4 / 3) and values.loc["b", "never_explore"] == 0
    )
    always, never = estimate(logged, share)
    assert (always.ips, always.online, always.lists, always.online_lists) == (2.5, 1.0, 2, 1)
    assert never.online == 2.0
