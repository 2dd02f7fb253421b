"""The engagement score, against values worked out by hand from the documented weights."""

import pandas as pd
import pytest

from podrec.recsys.engagement import engagement_scores
from podrec.settings import EngagementSettings

# listen 1, complete 1, like 2, replay 0.25, time 1 per hour heard (capped), early skip -1 below 5%
# fading to 0 at 600 s heard
W = EngagementSettings()


def score(**row: object) -> tuple[float, float]:
    base = {"plays": 1, "max_completion": 0.0, "likes": 0, "early_skip": False, "listen_seconds": 0.0}
    out = engagement_scores(pd.DataFrame([{**base, **row}]), W)
    return float(out["engagement"].iloc[0]), float(out["confidence"].iloc[0])


def test_full_listen_with_a_like_is_the_strongest_signal() -> None:
    # 1·1.0 (reached the end) + 1 (completed) + 2 (liked) = 4.0
    assert score(max_completion=1.0, likes=1) == (4.0, 4.0)


def test_half_listen_is_a_weak_positive() -> None:
    assert score(max_completion=0.5) == (0.5, 0.5)


def test_early_skip_is_a_confident_negative() -> None:
    assert score(max_completion=0.02, early_skip=True) == (-1.0, 1.0)


def test_an_early_skip_then_a_real_listen_the_same_day_counts_as_the_listen() -> None:
    # Skipped at 2%, came back and reached 60%: the furthest point says they engaged.
    assert score(max_completion=0.6, early_skip=True) == (0.6, 0.6)


def test_replays_add_up_to_three() -> None:
    # completed (1 + 1) + 0.25 per extra play, at most 3 extra: 2 + 0.75
    assert score(plays=3, max_completion=1.0)[0] == pytest.approx(2.5)
    assert score(plays=9, max_completion=1.0)[0] == pytest.approx(2.75)


def test_weights_are_configuration() -> None:
    custom = EngagementSettings(like_weight=5.0, early_skip_weight=-3.0)
    out = engagement_scores(
        pd.DataFrame(
            [
                {"plays": 1, "max_completion": 0.96, "likes": 2, "early_skip": False, "listen_seconds": 0.0},
                {"plays": 1, "max_completion": 0.01, "likes": 0, "early_skip": True, "listen_seconds": 0.0},
            ]
        ),
        custom,
    )
    assert out["engagement"].tolist() == pytest.approx([0.96 + 1 + 5, -3.0])


def test_time_heard_counts_a_five_minute_finish_apart_from_five_minutes_of_two_hours() -> None:
    # 5-minute episode, finished: 1·1.0 + 1 (completed) + 1·300/3600 = 2.0833
    assert score(max_completion=1.0, listen_seconds=300.0)[0] == pytest.approx(2 + 300 / 3600)
    # 2-hour episode, 5 minutes heard, then paused: 1·(300/7200) + 1·300/3600 = 0.125
    assert score(max_completion=300 / 7200, listen_seconds=300.0)[0] == pytest.approx(0.125)
    # 2-hour episode finished: 1 + 1 + 1·min(7200, 3600)/3600 = 3, more than the short finish
    assert score(max_completion=1.0, listen_seconds=7200.0)[0] == pytest.approx(3.0)


def test_an_early_skip_after_minutes_is_a_weak_negative() -> None:
    # Skipped at 4.2% of 2 hours (below 5%): -1·(1 - 300/600) = -0.5, not the -1 of a skip after seconds
    assert score(max_completion=300 / 7200, early_skip=True, listen_seconds=300.0) == (-0.5, 0.5)
    # after 10 s: -1·(1 - 10/600) = -0.98333
    assert score(max_completion=10 / 1800, early_skip=True, listen_seconds=10.0)[0] == pytest.approx(-59 / 60)
    # 11 minutes heard of a 4-hour episode (4.6%): never early any more, 660/14400 + 660/3600 = 0.22917
    assert score(max_completion=660 / 14400, early_skip=True, listen_seconds=660.0)[0] == pytest.approx(
        660 / 14400 + 660 / 3600
    )
