"""The recommendation rules of podrec/recsys/hybrid.py, on catalogs small enough to check by hand."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from podrec.recsys.hybrid import (
    Block,
    EpisodeIndex,
    ItemSide,
    _minmax,
    blend,
    candidates,
    reasons,
    recommend_block,
    rerank,
    warm_start,
    with_cold_start,
)
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


def test_a_list_the_caps_leave_short_is_filled_from_popularity() -> None:
    # The listener's only candidates are the big show's episodes (content neighbours of one play);
    # the per-show cap keeps two, popularity among English listeners fills the rest.
    rows = [(f"e{i}", f"e{i}", "big-show", "en", 10) for i in range(5)]
    rows += [("p1", "p1", "s1", "en", 3), ("p2", "p2", "s2", "en", 3), ("p3", "p3", "s3", "en", 3)]
    cat = catalog(rows, {("e0", f"e{i}"): 0.9 - 0.1 * i for i in range(1, 5)})
    cat.popularity = {"en": np.array([9.0, 9, 9, 9, 9, 1, 5, 3])}
    items = ItemSide.build(cat, np.zeros((8, 2), dtype=np.float32), rules(k=4, per_show_cap=2))
    out = lists(items, user(history=[0], weights=[2.0], exclude=[0]))
    assert out["episode_id"].tolist() == ["e1", "e2", "p2", "p3"]
    assert out["rank"].tolist() == [1, 2, 3, 4] and set(out["policy"]) == {"hybrid"}
    assert out["reason"].tolist()[2:] == ["popular with en listeners"] * 2
    assert out["score"].tolist()[2:] == [0.0, 0.0]


def test_a_listener_who_only_skipped_gets_popular_episodes() -> None:
    # Only early skips in the window: ALS fits the listener an all-zero factor, which ranks every
    # episode equal — it is no signal, so the listener is served like one without history.
    cat = catalog([("a", "a", "s1", "en", 5), ("b", "b", "s2", "en", 5), ("c", "c", "s3", "en", 5)])
    cat.popularity = {"en": np.array([1.0, 2.0, 9.0])}
    learned = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    items = ItemSide.build(cat, learned, rules(k=2))
    out = lists(items, user(factors=[0.0, 0.0], history=[0], weights=[-0.9], exclude=[0]))
    assert out["episode_id"].tolist() == ["c", "b"] and set(out["policy"]) == {"popular"}


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


def test_a_new_translation_inherits_its_canonical_episodes_factors() -> None:
    # x_en has 30 listeners, its Italian translation x_it none yet; the pooled model has one row for x.
    cat = catalog([("x_en", "x_en", "s-en", "en", 30), ("x_it", "x_en", "s-it", "it", 0)])
    canonical_factors = np.array([[0.6, 0.8], [0.6, 0.8]], dtype=np.float32)  # aligned by canonical id
    pooled = ItemSide.build(cat, canonical_factors, rules(full_weight_listeners=20))
    # λ from the group's 30 listeners: min(30/20, 1) = 1, so x_it is scored on x's factors from day one
    assert pooled.lam.tolist() == [1.0, 1.0] and pooled.warm[1].tolist() == pytest.approx([0.6, 0.8])
    assert pooled.is_new.tolist() == [False, False]
    # Fitted per variant instead, x_it has no factors and no listeners: new, λ 0, no neighbours → zeros
    apart = ItemSide.build(cat, np.array([[0.6, 0.8], [0, 0]], dtype=np.float32), rules(), pooled=False)
    assert apart.lam.tolist() == [1.0, 0.0] and apart.warm[1].tolist() == [0.0, 0.0]
    assert apart.is_new.tolist() == [False, True]
    # An Italian listener is served the Italian variant, scored on the inherited factors.
    out = lists(pooled, user(locale="it-IT", factors=[0.6, 0.8]))
    assert out["episode_id"].tolist() == ["x_it"] and out["reason"].iloc[0].startswith("listeners")


def show_catalog() -> EpisodeIndex:
    """Show s published a..e on days 1..5; o is another show's episode."""
    rows = [(e, e, "s", "en", 5) for e in "abcde"] + [("o", "o", "t", "en", 5)]
    cat = catalog(rows)
    return EpisodeIndex(
        ids=cat.ids, canonical_ids=cat.canonical_ids, show=cat.show, language=cat.language, title=cat.title,
        similarity=cat.similarity, interactions=cat.interactions,
        published=np.array([1.0, 2.0, 3.0, 4.0, 5.0, 1.0]) * 86_400,
    )  # fmt: skip


def test_the_next_unplayed_episode_of_a_followed_show_is_blended_in() -> None:
    learned = np.array([[1.0], [1.0], [1.0], [0.2], [0.1], [1.0]], dtype=np.float32)
    items = ItemSide.build(show_catalog(), learned, rules(k=3, follow_weight=0.5, follow_min_episodes=3))
    listener = user(factors=[1.0], history=[0, 1, 2], weights=[2.0, 2.0, 2.0], exclude=[0, 1, 2])
    out = lists(items, listener)
    # ALS over the candidates {d 0.2, e 0.1, o 1.0} → d 0.111, e 0, o 1; no content, so 0.7·ALS;
    # followed (a, b, c heard), d is next: 0.5·0.7·0.111 + 0.5·1 = 0.5389, o 0.5·0.7 = 0.35, e 0
    assert out["episode_id"].tolist() == ["d", "o", "e"]
    assert out["score"].tolist() == pytest.approx([0.5 * 0.7 * 0.1 / 0.9 + 0.5, 0.35, 0.0], abs=1e-6)
    assert out["reason"].iloc[0] == "next episode of a show you follow, after “c”"
    # Two episodes heard is not following (N = 3): the plain blend (c and o 1, d 0.111, e 0).
    two = user(factors=[1.0], history=[0, 1], weights=[2.0, 2.0], exclude=[0, 1])
    assert lists(items, two)["episode_id"].tolist() == ["c", "o", "d"]
    # d played (and skipped): the next unplayed one is e.
    skipped = user(factors=[1.0], history=[0, 1, 2, 3], weights=[2.0, 2.0, 2.0, -1.0], exclude=[0, 1, 2, 3])
    assert lists(items, skipped)["episode_id"].tolist() == ["e", "o"]
    # Histories come as arrays in the Spark path (Arrow lists): the same list.
    as_arrays = user(factors=[1.0], history=np.array([0, 1, 2]), weights=np.array([2.0, 2.0, 2.0]),
                     exclude=[0, 1, 2])  # fmt: skip
    assert lists(items, as_arrays)["episode_id"].tolist() == ["d", "o", "e"]


def test_mmr_trades_score_for_content_distance() -> None:
    rows = [(e, e, f"s{e}", "en", 5) for e in "xyzq"]
    cat = catalog(rows, {("x", "y"): 0.9, ("x", "z"): 0.1})
    learned = np.array([[3.0], [2.9], [2.0], [1.0]], dtype=np.float32)
    listener = user(factors=[1.0])  # no history: ALS only, 0.7·(x 1, y 0.95, z 0.5, q 0)
    plain = ItemSide.build(cat, learned, rules(k=3, full_weight_listeners=1))
    assert lists(plain, listener)["episode_id"].tolist() == ["x", "y", "z"]
    mmr = ItemSide.build(cat, learned, rules(k=3, full_weight_listeners=1, rerank_weight=0.5))
    # 1st: x (0.5·0.7); 2nd: y 0.5·0.665 - 0.5·0.9 = -0.1175, z 0.5·0.35 - 0.5·0.1 = 0.125, q 0 → z;
    # 3rd: y still -0.1175 (x is its nearest), q 0 → q
    assert lists(mmr, listener)["episode_id"].tolist() == ["x", "z", "q"]


def test_fresh_episodes_close_to_the_history_are_weighed_in_for_hybrid_only() -> None:
    """h was heard; "old" (day 1) and "new" (day 9) are equally close to it, ALS prefers old."""
    rows = [("h", "h", "s1", "en", 5), ("old", "old", "s2", "en", 5), ("new", "new", "s3", "en", 5),
            ("z", "z", "s4", "en", 5)]  # fmt: skip
    cat = catalog(rows, {("h", "old"): 0.5, ("h", "new"): 0.5})
    dated = EpisodeIndex(
        ids=cat.ids, canonical_ids=cat.canonical_ids, show=cat.show, language=cat.language, title=cat.title,
        similarity=cat.similarity, interactions=cat.interactions,
        published=np.array([1.0, 1.0, 9.0, 1.0]) * 86_400,
    )  # fmt: skip
    learned = np.array([[0.5], [1.0], [0.2], [0.0]], dtype=np.float32)
    as_of = 10 * 86_400.0
    listener = user(factors=[1.0], history=[0], weights=[2.0], exclude=[0])

    fresh = ItemSide.build(dated, learned, rules(k=3, full_weight_listeners=1, fresh_weight=0.6), as_of=as_of)
    assert fresh.fresh.tolist() == [False, False, True, False]  # 1 day old; the others 9 days
    out = lists(fresh, listener)
    # blend 0.7·ALS + 0.3·content: old 1.0, new 0.7·0.2 + 0.3 = 0.44, z 0; new is fresh and close to h:
    # 0.4·blend + 0.6·content → old 0.4, new 0.4·0.44 + 0.6 = 0.776
    assert out["episode_id"].tolist() == ["new", "old", "z"]
    assert out["score"].tolist() == pytest.approx([0.776, 0.4, 0.0], abs=1e-6)
    assert out["reason"].iloc[0] == "published in the last 7 days, close to “h” you listened to"
    # ALS alone has no content to know a new episode by: its order is the blend's.
    assert lists(fresh, {**listener, "policy": "als_only"})["episode_id"].tolist() == ["old", "new", "z"]
    # Off (the default), or without the lists' time: the plain blend.
    for items in (
        ItemSide.build(dated, learned, rules(k=3, full_weight_listeners=1), as_of=as_of),
        ItemSide.build(dated, learned, rules(k=3, full_weight_listeners=1, fresh_weight=0.6)),
    ):
        out = lists(items, listener)
        assert out["episode_id"].tolist() == ["old", "new", "z"]
        assert out["score"].tolist() == pytest.approx([1.0, 0.44, 0.0], abs=1e-6)


def test_follow_and_fresh_weights_share_one_score() -> None:
    with pytest.raises(ValueError, match="at most 1"):
        HybridSettings(follow_weight=0.6, fresh_weight=0.5)


# Each step of recommend_block alone: candidates → blend → rerank → reasons.


def one_listener_block(items: ItemSide, listener: dict) -> tuple[Block, np.ndarray]:
    block = Block.of(pd.DataFrame([listener]), items)
    allowed = np.ones(len(items.episodes), dtype=bool)
    allowed[block.excluded[0]] = False
    return block, allowed


def test_candidates_are_what_each_policy_allows() -> None:
    learned = np.array([[1.0], [1.0], [1.0], [0.2], [0.1], [1.0]], dtype=np.float32)
    items = ItemSide.build(show_catalog(), learned, rules(k=3, follow_weight=0.5, follow_min_episodes=3))
    listener = user(factors=[1.0], history=[0, 1, 2], weights=[2.0, 2.0, 2.0], exclude=[0, 1, 2])
    block, allowed = one_listener_block(items, listener)
    hybrid = candidates(block, 0, "hybrid", allowed)
    assert hybrid.ids.tolist() == [3, 4, 5]  # d, e, o: ALS's; a, b, c were heard
    assert hybrid.followed == {3: 2}  # d comes after c in the followed show
    assert candidates(block, 0, "als_only", allowed).followed == {}  # the follow source is the hybrid's
    assert candidates(block, 0, "content_only", allowed).ids.tolist() == []  # no similarity in this catalog


def test_blend_shares_the_score_between_the_sources_by_their_weights() -> None:
    cat = catalog([("h", "h", "", "en", 5), ("x", "x", "", "en", 5), ("y", "y", "", "en", 5)],
                  {("h", "x"): 0.2, ("h", "y"): 0.6})  # fmt: skip
    learned = np.array([[0.0], [3.0], [1.0]], dtype=np.float32)
    items = ItemSide.build(cat, learned, rules(k=2, full_weight_listeners=1, als_weight=0.7))
    block, allowed = one_listener_block(items, user(factors=[1.0], history=[0], weights=[2.0], exclude=[0]))
    found = candidates(block, 0, "hybrid", allowed)
    blended = blend(block, 0, "hybrid", found)
    assert blended.als.tolist() == pytest.approx([1.0, 0.0]) and blended.content.tolist() == pytest.approx(
        [0, 1]
    )
    assert blended.score.tolist() == pytest.approx([0.7, 0.3])
    assert blended.parts(0) == pytest.approx((0.7, 0.0)) and blended.parts(1) == pytest.approx((0.0, 0.3))
    assert blend(block, 0, "content_only", found).score.tolist() == pytest.approx([0.0, 1.0])


def test_rerank_keeps_one_variant_and_the_show_cap() -> None:
    rows = [("a", "a", "s", "en", 9), ("a-it", "a", "s", "it", 1), ("b", "b", "s", "en", 8),
            ("c", "c", "s", "en", 7), ("d", "d", "t", "en", 6)]  # fmt: skip
    items = ItemSide.build(catalog(rows), np.ones((5, 1), dtype=np.float32), rules(k=3, per_show_cap=2))
    block, allowed = one_listener_block(items, user(factors=[1.0]))
    found = candidates(block, 0, "hybrid", allowed)
    blended = blend(block, 0, "hybrid", found)
    blended.score[:] = [0.9, 0.8, 0.7, 0.6, 0.1]  # a, its Italian variant, then b, c of the same show
    picks = rerank(items, "hybrid", found.ids, blended, "en")
    assert [items.episodes.ids[item] for item, _ in picks] == ["a", "b", "d"]


def test_reasons_name_the_followed_show_and_leave_other_rows_alone() -> None:
    items = ItemSide.build(show_catalog(), np.ones((6, 1), dtype=np.float32), rules(k=3))
    rows = [
        ("u", 1, 3, 0.9, 0.1, 0.0, "hybrid", ""),
        ("u", 2, 5, 0.0, None, None, "hybrid", "popular with en listeners"),
    ]
    out = reasons(items, [[0, 1, 2]], rows, [(0, 0, 3, "hybrid", 0.1, 0.0, 2)])
    assert out[0][-1] == "next episode of a show you follow, after “c”"
    assert out[1][-1] == "popular with en listeners"
