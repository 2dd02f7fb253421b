"""The engagement score, against values worked out by hand from the documented weights."""

import pandas as pd
import pytest

from podrec.recsys.engagement import engagement_scores
from podrec.settings import EngagementSettings

W = EngagementSettings()  # listen 1, complete 1, like 2, replay 0.25, early skip -1 below 5%


def score(**row: object) -> tuple[float, float]:
    base = {"plays": 1, "max_completion": 0.0, "likes": 0, "early_skip": False}
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
                {"plays": 1, "max_completion": 0.96, "likes": 2, "early_skip": False},
                {"plays": 1, "max_completion": 0.01, "likes": 0, "early_skip": True},
            ]
        ),
        custom,
    )
    assert out["engagement"].tolist() == pytest.approx([0.96 + 1 + 5, -3.0])
