"""The coordinated-plays rules of podrec/recsys/bursts.py on numbers small enough to check by hand, and
their place in the daily job."""

import math

import pandas as pd
import pytest
from dagster import AssetCheckKey, AssetKey

from podrec.recsys.bursts import burst_episodes, rate_threshold, reach_ratio
from podrec.settings import BurstSettings, load_settings
from podrec_assets.definitions import build_definitions


def test_reach_ratio_compares_new_listeners_with_old_ones_and_one_more_old() -> None:
    # 40 of 50 new listeners (0.8) vs 9 of 999 old ones, one added: 10/1000 = 0.01 → 80 times.
    assert reach_ratio(40, 9, 50, 999) == pytest.approx(80.0)
    # No old listener played it: judged as if one had, so the ratio stays finite: 0.8 / (1/1000) = 800.
    assert reach_ratio(40, 0, 50, 999) == pytest.approx(800.0)
    assert reach_ratio(0, 5, 0, 100) == 0.0  # no new listener at all


def test_an_episode_new_listeners_crowd_is_a_burst_and_a_fresh_favourite_is_not() -> None:
    rules = BurstSettings(min_new_listeners=50, reach_ratio=10)
    per_episode = pd.DataFrame(
        {
            "episode_id": ["farmed", "fresh_hit", "small", "quiet"],
            # farmed: 500 of 600 new listeners, 4 of 999 old: (500/600) / (5/1000) = 166.7 → burst.
            # fresh_hit: 120 of 600 new, 150 of 999 old — what everyone plays: 0.2 / 0.151 = 1.3.
            # small: 30 new alone: 0.05 / 0.001 = 50 times, but below 50 new listeners.
            "new_listeners": [500, 120, 30, 0],
            "old_listeners": [4, 150, 0, 10],
        }
    )
    found = burst_episodes(per_episode, new_total=600, old_total=999, rules=rules)
    assert found["episode_id"].tolist() == ["farmed"]
    row = found.iloc[0]
    assert row["ratio"] == pytest.approx((500 / 600) / (5 / 1000))
    assert (row["reach_new"], row["reach_old"]) == (pytest.approx(500 / 600), pytest.approx(4 / 999))


def test_a_young_lake_where_everyone_is_new_has_no_burst() -> None:
    # No old listener: (m / M) / (1 / 1) is at most 1, below any ratio the settings allow (> 1).
    per_episode = pd.DataFrame({"episode_id": ["a"], "new_listeners": [300], "old_listeners": [0]})
    assert burst_episodes(per_episode, 300, 0, BurstSettings(min_new_listeners=1)).empty


def test_the_rate_bound_is_median_plus_k_mads_on_the_log_scale_with_a_floor() -> None:
    rules = BurstSettings(rate_mads=10, rate_min_per_day=50)
    # Median 2 a day, MAD 0.25 in log: 2·e^2.5 = 24.4 a day, under the floor of 50.
    assert rate_threshold(math.log(2), 0.25, rules) == 50.0
    # A wider spread (MAD 0.4): 2·e^4 = 109.2 a day.
    assert rate_threshold(math.log(2), 0.4, rules) == pytest.approx(2 * math.exp(4))
    assert rate_threshold(math.log(2), 0.0, rules) == 50.0  # identical listeners: the floor


def test_the_daily_job_flags_before_the_fit_and_its_gate_blocks() -> None:
    graph = build_definitions(load_settings()).resolve_job_def("daily").asset_layer.asset_graph
    flagged, fit, lists = (
        AssetKey(["silver", "flagged_listeners"]),
        AssetKey(["gold", "als_factors"]),
        AssetKey(["gold", "recommendations"]),
    )
    assert flagged in graph.get(fit).parent_keys and flagged in graph.get(lists).parent_keys
    assert graph.get_check_spec(AssetCheckKey(fit, "no_held_out_listener")).blocking
    assert not graph.get_check_spec(AssetCheckKey(flagged, "coordinated_plays")).blocking  # it warns
