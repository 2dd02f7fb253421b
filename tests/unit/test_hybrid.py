"""The recommendation rules of podrec/recsys/hybrid.py, on catalogs small enough to check by hand."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from podrec.recsys.hybrid import EpisodeIndex, ItemSide, _minmax, recommend_block, warm_start, with_cold_start
from podrec.settings import HybridSettings


def rules(**knobs: object) -> HybridSettings:
    """The hybrid settings with a concrete cold-start strategy (``factor`` unless given)."""
    return with_cold_start(HybridSettings(**knobs))


def catalog(
    rows: list[tuple[str, str, str, str, int]],
    sims: dict[tuple[str, str], float] = {},  # noqa: B006
) -> EpisodeIndex:
    """rows: (episode, canonical, show, language, listeners)."""
    ids = np.array([r[0] for r in rows], dtype=object)
    index = {e: i for i, e in enumerate(ids)}
    sim = sp.lil_matrix((len(ids), len(ids)), dtype=np.float32)
    for (a, b), v in sims.items():
        sim[index[a], index[b]] = v
    return EpisodeIndex(
        ids=ids,
        canonical_ids=np.array([r[1] for r in rows], dtype=object),
        show=np.array([r[2] for r in rows], dtype=object),
        language=np.array([r[3] for r in rows], dtype=object),
        title=ids.copy(),
        similarity=sim.tocsr(),
        interactions=np.array([r[4] for r in rows], dtype=float),
    )


def user(
    user_id: str = "u",
    locale: str = "en-US",
    policy: str = "hybrid",
    factors=None,
    history=(),
    weights=(),
    exclude=(),
):
    return {"user_id": user_id, "locale": locale, "policy": policy, "factors": factors,
            "history": list(history), "weights": list(weights), "exclude": list(exclude)}  # fmt: skip


def lists(items: ItemSide, *users: dict) -> pd.DataFrame:
    return recommend_block(pd.DataFrame(list(users)), items)


def test_minmax_scales_over_candidates_only() -> None:
    values = np.array([2.0, 4.0, 6.0, 100.0])
    out = _minmax(values, np.array([True, True, True, False]))
    assert out.tolist() == [0.0, 0.5, 1.0, 0.0]
    constant = _minmax(np.array([5.0, 5.0, 1.0]), np.array([True, True, False]))
    assert constant.tolist() == [0.0, 0.0, 0.0]  # a constant set carries no preference


def test_cold_start_schedule_on_factors() -> None:
    cat = catalog(
        [("a", "a", "s1", "en", 30), ("b", "b", "s2", "en", 10), ("c", "c", "s3", "en", 0)],
        {("c", "a"): 0.6, ("c", "b"): 0.2},
    )
    learned = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=np.float32)
    warm, lam = warm_start(learned, cat.interactions, cat.similarity, rules(full_weight_listeners=20))
    assert lam.tolist() == [1.0, 0.5, 0.0]  # 30/20 capped, 10/20, no listeners
    assert warm[0].tolist() == [1.0, 0.0]  # proven: its own factors
    assert warm[1].tolist() == [0.0, 0.5]  # half its own; no engaged neighbours, so no prior
    # new: the similarity-weighted mean of its neighbours' factors, (0.6·a + 0.2·b) / 0.8
    assert warm[2] == pytest.approx([0.75, 0.25])


def test_scores_are_normalised_per_user_then_blended() -> None:
    cat = catalog([("h", "h", "", "en", 5), ("x", "x", "", "en", 5), ("y", "y", "", "en", 5)],
                  {("h", "x"): 0.2, ("h", "y"): 0.6})  # fmt: skip
    learned = np.array([[0.0, 0.0], [3.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    items = ItemSide.build(cat, learned, rules(k=2, full_weight_listeners=1))
    out = lists(items, user(factors=[1.0, 0.0], history=[0], weights=[2.0], exclude=[0]))
    # ALS 3 vs 1 → 1 and 0; content 0.2 vs 0.6 → 0 and 1; 0.7/0.3 blend → x 0.7, y 0.3
    assert out["episode_id"].tolist() == ["x", "y"]
    assert out["score"].tolist() == pytest.approx([0.7, 0.3])
    assert out["als_score"].tolist() == pytest.approx([1.0, 0.0])
    assert out["content_score"].tolist() == pytest.approx([0.0, 1.0])


def test_a_brand_new_episode_with_no_events_reaches_a_list() -> None:
    rows = [("liked", "liked", "s0", "en", 40), ("new", "new", "s9", "en", 0)]
    rows += [(f"old{i}", f"old{i}", f"s{i}", "en", 40) for i in range(1, 6)]
    cat = catalog(rows, {("liked", "new"): 0.9, ("new", "liked"): 0.9})
    rng = np.random.default_rng(0)
    learned = rng.normal(size=(len(rows), 4)).astype(np.float32)
    learned[1] = 0.0  # the model never saw it
    taste = learned[0]
    for strategy in ("factor", "literal", "reserved"):
        items = ItemSide.build(cat, learned, rules(k=3, cold_start=strategy))
        out = lists(items, user(factors=taste.tolist(), history=[0], weights=[4.0], exclude=[0]))
        assert "new" in out["episode_id"].tolist(), strategy
        row = out[out["episode_id"] == "new"].iloc[0]
        assert row["reason"] == "new episode, close to “liked” you listened to"
    # ALS alone never reaches it: it has no factors.
    items = ItemSide.build(cat, learned, rules(k=3))
    out = lists(
        items, user(policy="als_only", factors=taste.tolist(), history=[0], weights=[4.0], exclude=[0])
    )
    assert "new" not in out["episode_id"].tolist()


def variant_catalog() -> EpisodeIndex:
    return catalog(
        [
            ("x_en", "x", "show-en", "en", 50), ("x_it", "x", "show-it", "it", 10),
            ("x_pt", "x", "show-pt", "pt", 5), ("y_it", "y", "show-it", "it", 3),
            ("y_pt", "y", "show-pt", "pt", 8),
        ]
    )  # fmt: skip


def test_one_variant_per_episode_in_the_listeners_language() -> None:
    items = ItemSide.build(variant_catalog(), np.ones((5, 2), dtype=np.float32), rules(k=5))
    shown = {
        locale: lists(items, user(locale=locale, factors=[1.0, 0.0]))["episode_id"].tolist()
        for locale in ("it-IT", "de-DE", "pt-BR")
    }
    assert sorted(shown["it-IT"]) == ["x_it", "y_it"]  # their language
    # German: x falls back to English; y has no English variant, so its most-played one
    assert sorted(shown["de-DE"]) == ["x_en", "y_pt"]
    assert sorted(shown["pt-BR"]) == ["x_pt", "y_pt"]


def test_completed_episodes_are_left_out_with_their_variants() -> None:
    items = ItemSide.build(variant_catalog(), np.ones((5, 2), dtype=np.float32), rules(k=5))
    out = lists(items, user(locale="it-IT", factors=[1.0, 0.0], history=[0], weights=[2.0], exclude=[0]))
    assert out["canonical_episode_id"].tolist() == ["y"]  # finished x in English: no x in any language


def test_one_show_cannot_fill_a_list() -> None:
    rows = [(f"e{i}", f"e{i}", "big-show", "en", 10) for i in range(6)] + [("o1", "o1", "other", "en", 1)]
    learned = np.array([[6.0 - i, 0.0] for i in range(6)] + [[0.5, 0.0]], dtype=np.float32)
    items = ItemSide.build(catalog(rows), learned, rules(k=4, per_show_cap=2))
    out = lists(items, user(factors=[1.0, 0.0], policy="als_only"))
    assert out["episode_id"].tolist() == ["e0", "e1", "o1"]  # two of the big show, then the rest


def test_listeners_without_history_get_their_languages_popular_episodes() -> None:
    cat = catalog([("p_it", "p_it", "a", "it", 9), ("p_en", "p_en", "b", "en", 9), ("q", "q", "c", "en", 9)])
    cat.popularity = {"it": np.array([7.0, 1.0, 0.0]), "en": np.array([0.0, 2.0, 9.0])}
    items = ItemSide.build(cat, np.zeros((3, 2), dtype=np.float32), rules(k=2))
    it = lists(items, user(locale="it-IT"))
    assert it["episode_id"].tolist() == ["p_it", "p_en"]
    assert set(it["policy"]) == {"popular"} and it["reason"].iloc[0] == "popular with it listeners"
    assert lists(items, user(locale="en-GB"))["episode_id"].tolist() == ["q", "p_en"]
    # A language nobody listens in: popularity over all listeners (p_it 7, p_en 3, q 9).
    assert lists(items, user(locale="ko-KR"))["episode_id"].tolist() == ["q", "p_it"]
