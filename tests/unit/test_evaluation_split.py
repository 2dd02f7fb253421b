"""The evaluation protocols' splits and the cold-start rule, without Spark."""

import math
from datetime import date, timedelta

import pandas as pd
import pytest

from podrec.recsys.cold_start import choose_cold_start
from podrec.recsys.evaluation import EvaluationError, category_miscalibration, choose_rerank_weight
from podrec.recsys.evaluation import split_train_test as split


def daily(users: int = 20, items: int = 12, days: int = 5) -> pd.DataFrame:
    start = date(2026, 11, 1)
    rows = [
        {"user_id": f"u{u}", "episode_id": f"e{(u + d * 2 + j) % items}",
         "event_date": start + timedelta(days=d),
         "engagement": 1.0 if (u + j) % 5 else -1.0, "max_completion": 1.0, "locale": "en-US"}
        for u in range(users) for d in range(days) for j in range(2)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_stratified_holds_out_a_quarter_of_each_users_episodes() -> None:
    data = daily()
    s = split(data, "stratified", cold_fraction=0.0)
    per_user = data.groupby("user_id")["episode_id"].nunique()
    train = s.train.groupby("user_id")["episode_id"].nunique()
    for u, n in per_user.items():
        held = n - train.get(u, 0)
        assert held == max(1, round(n * 0.25))
    for u, items in s.test.items():  # test episodes are never in the same user's training part
        assert not items & set(s.train[s.train["user_id"] == u]["episode_id"])


def test_new_episodes_are_removed_from_training() -> None:
    s = split(daily(), "stratified", cold_fraction=0.25)
    assert s.cold_items
    assert not s.cold_items & set(s.train["episode_id"])
    assert s.cold_items <= set().union(*s.test.values())


def test_time_split_trains_on_the_past_only() -> None:
    data = daily()
    s = split(data, "time", cold_fraction=0.0)
    last_train_day = data.merge(s.train[["user_id", "episode_id"]]).event_date.max()
    assert last_train_day < data["event_date"].max()
    with pytest.raises(EvaluationError, match="two days"):
        split(data[data["event_date"] == data["event_date"].min()], "time")


def test_cold_start_rule_picks_best_new_recall_within_two_percent() -> None:
    strategies = {
        "literal": {"ndcg": 0.06, "cold_recall": 0.09},  # floods lists: loses far more than 2%
        "fixed": {"ndcg": 0.404, "cold_recall": 0.0},
        "reserved": {"ndcg": 0.375, "cold_recall": 0.016},
        "factor": {"ndcg": 0.413, "cold_recall": 0.005},
    }
    # docs/design.md's table: als_only 0.412 → within 2% means ≥ 0.40376; literal and reserved are out
    assert choose_cold_start(strategies, 0.412) == "factor"
    assert choose_cold_start(strategies, None) is None


def test_the_published_protocol_counts_every_held_out_interaction() -> None:
    data = daily()
    s = split(data, "published")
    pairs = data.groupby(["user_id", "episode_id"], as_index=False)["engagement"].sum()
    negative = set(zip(*pairs[pairs["engagement"] <= 0][["user_id", "episode_id"]].T.to_numpy(), strict=True))
    held = {(u, e) for u, items in s.test.items() for e in items}
    assert held & negative  # a rejected episode held out is still relevant, as in the published tables
    assert not s.cold_items and not s.new_variants  # nothing held out as new
    for u, items in s.test.items():  # a quarter of each listener's interactions, none in training
        n = int((pairs["user_id"] == u).sum())
        assert len(items) == max(1, round(n * 0.25))
        assert not items & set(s.train[s.train["user_id"] == u]["episode_id"])


def test_new_variants_keep_a_sibling_in_training_and_cold_episodes_lose_every_variant() -> None:
    # e0..e5 have Italian twins i0..i5 (canonical: the e); listeners hear both languages.
    rows = [
        {"user_id": f"u{u}", "episode_id": f"{lang}{(u + j) % 6}", "event_date": date(2026, 11, 1),
         "engagement": 1.0, "max_completion": 1.0, "locale": "en-US"}
        for u in range(30) for j in range(4) for lang in ("e", "i")
    ]  # fmt: skip
    canonical = {f"{lang}{n}": f"e{n}" for n in range(6) for lang in ("e", "i")}
    s = split(pd.DataFrame(rows), "stratified", cold_fraction=0.2, canonical=canonical)
    trained = set(s.train["episode_id"])
    assert s.new_variants and s.cold_items
    for episode in s.new_variants:  # no training interaction of its own; its twin's are kept
        assert episode not in trained
        assert {e for e in trained if canonical[e] == canonical[episode]}
    for episode in s.cold_items:  # held out as new: neither language is in training
        assert not {e for e in trained if canonical[e] == canonical[episode]}
    assert len({canonical[e] for e in s.new_variants}) == len(s.new_variants)  # one per canonical episode


def test_rerank_rule_picks_the_most_diverse_weight_within_two_percent() -> None:
    tradeoff = {
        0.0: {"ndcg": 0.300, "diversity": 0.60},
        0.1: {"ndcg": 0.297, "diversity": 0.65},  # -1%: allowed
        0.2: {"ndcg": 0.290, "diversity": 0.70},  # -3.3%: beyond 2% (floor 0.294)
        0.3: {"ndcg": 0.250, "diversity": 0.80},
    }
    assert choose_rerank_weight(tradeoff) == 0.1
    assert choose_rerank_weight({0.1: {"ndcg": 0.3, "diversity": 0.7}}) is None  # no baseline to compare


def test_category_calibration_error_is_steck_kl() -> None:
    categories = {"a": ("News",), "b": ("News",), "c": ("Comedy",), "d": ("News", "Comedy")}
    profile = {"News": 0.5, "Comedy": 0.5}
    # The list is all News: q̃ = 0.99·(1, 0) + 0.01·(0.5, 0.5) = (0.995, 0.005);
    # KL = 0.5·ln(0.5/0.995) + 0.5·ln(0.5/0.005)
    expected = 0.5 * math.log(0.5 / 0.995) + 0.5 * math.log(0.5 / 0.005)
    assert category_miscalibration(["a", "b"], profile, categories) == pytest.approx(expected)
    # a and c mirror the mix exactly (as does d alone, split over both): 0
    assert category_miscalibration(["a", "c"], profile, categories) == pytest.approx(0.0)
    assert category_miscalibration(["d"], profile, categories) == pytest.approx(0.0)
    assert category_miscalibration(["x"], profile, categories) is None  # nothing known about the list
