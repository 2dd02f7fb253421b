"""The A/B analysis on hand-made listeners: values, intervals and the policy difference."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from podrec.recsys.ab_analysis import PlayedEpisodes, analyse

DAY = date(2026, 11, 20)


def assign(user_id: str) -> tuple[int, str]:
    b = int(user_id[1:]) % 4
    return b, "hybrid" if b < 2 else "als_only"


def listeners() -> pd.DataFrame:
    # u0,u1,u4,u5 -> hybrid (buckets 0,1); u2,u3,u6,u7 -> als_only (buckets 2,3)
    return pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(8)],
            "engaged": [True, True, False, True, True, True, False, False],
            "completion": [1.0, 0.5, np.nan, 0.2, 0.8, 0.7, 0.1, 0.3],
            "session_minutes": [30.0, 20.0, 5.0, 10.0, 40.0, 30.0, 5.0, 15.0],
            "canonical": [["a", "b"], ["a"], [], ["c"], ["d"], ["b"], ["c"], ["c"]],
        }
    )


def test_per_policy_values_and_the_difference() -> None:
    table = analyse(listeners(), DAY, assign, catalog_size=10)
    policy = table[table["level"] == "policy"].set_index(["policy", "metric"])["value"]
    assert policy["hybrid", "engagement_rate"] == 1.0
    assert policy["als_only", "engagement_rate"] == 0.25
    assert policy["hybrid", "completion"] == pytest.approx((1.0 + 0.5 + 0.8 + 0.7) / 4)
    assert policy["als_only", "completion"] == pytest.approx((0.2 + 0.1 + 0.3) / 3)  # NaN: played nothing
    assert policy["hybrid", "catalog_diversity"] == pytest.approx(0.3)  # a, b, d of 10
    assert policy["als_only", "catalog_diversity"] == pytest.approx(0.1)  # c
    diff = table[table["level"] == "difference"].set_index("metric")
    assert diff.loc["engagement_rate", "value"] == pytest.approx(0.75)
    assert diff.loc["session_minutes", "value"] == pytest.approx(30.0 - 8.75)
    for metric, row in diff.iterrows():
        assert row["ci_low"] <= row["value"] <= row["ci_high"], metric
    assert set(diff["listeners"]) == {8}


def test_per_bucket_rows_and_stable_intervals() -> None:
    table = analyse(listeners(), DAY, assign, catalog_size=10)
    buckets = table[table["level"] == "bucket"]
    assert sorted(buckets["bucket"].unique()) == [0, 1, 2, 3]
    assert (buckets.groupby("bucket")["listeners"].first() == 2).all()
    # The same input (in any order) gives the same intervals: the bootstrap is seeded and ordered.
    shuffled = analyse(listeners().sample(frac=1, random_state=3), DAY, assign, catalog_size=10)
    pd.testing.assert_frame_equal(table, shuffled)


def test_bootstrap_diversity_counts_what_a_set_of_the_drawn_listeners_holds() -> None:
    rng = np.random.default_rng(5)
    pool = ["a", "b", "c", "d", "e", None]  # an episode outside the catalog has no canonical id
    canonical = pd.Series([list(rng.choice(pool, size=rng.integers(0, 4), replace=False)) for _ in range(50)])
    played = PlayedEpisodes(canonical, catalog_size=7)
    assert played.diversity() == pytest.approx(len({c for items in canonical for c in items}) / 7)
    for _ in range(20):
        draw = rng.integers(0, len(canonical), len(canonical))
        expected = len({c for items in canonical.iloc[draw] for c in items}) / 7
        assert played.diversity(draw) == pytest.approx(expected)
