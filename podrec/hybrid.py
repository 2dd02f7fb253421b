"""The recommendation rules (DESIGN.md, Rules), as plain numpy over one block of users.

Everything that decides what is in a list lives here: ALS and content candidates, per-user
normalisation, the blend, the cold-start strategies, one variant per canonical episode in the
listener's language, the per-show cap, completed episodes left out, popularity for listeners
without history, and the reason each row is there. The same function serves the daily
``gold/recommendations`` asset (inside Spark's ``mapInPandas``, one block per batch) and the
offline evaluation (in-process), so what is evaluated is what is served.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

POLICIES = ("hybrid", "als_only", "content_only", "popular", "random")
COLD_START_STRATEGIES = ("factor", "literal", "reserved", "fixed")
OUTPUT_COLUMNS = [
    "user_id", "rank", "episode_id", "canonical_episode_id", "score", "als_score", "content_score",
    "policy", "reason",
]  # fmt: skip


@dataclass(frozen=True)
class HybridParams:
    """Knobs of the rules; defaults mirror podrec/settings.py."""

    k: int = 10
    als_weight: float = 0.7
    cold_start: str = "factor"
    full_weight_listeners: int = 20
    prior_neighbors: int = 20
    candidates: int = 200
    per_show_cap: int = 3
    fallback_language: str = "en"
    reserved_slots: int = 2

    def __post_init__(self) -> None:
        if self.cold_start not in COLD_START_STRATEGIES:
            raise ValueError(f"cold_start must be one of {COLD_START_STRATEGIES}, got {self.cold_start!r}")
        if not 0.0 <= self.als_weight <= 1.0:
            raise ValueError(f"als_weight must be within [0, 1], got {self.als_weight}")


@dataclass
class Catalog:
    """The item side: one entry per episode, in a fixed order (index = position)."""

    ids: np.ndarray
    canonical_ids: np.ndarray
    show: np.ndarray  # show (feed) of each episode; "" when unknown, then no cap applies
    language: np.ndarray
    title: np.ndarray
    similarity: sp.csr_matrix  # row i: episode i's content neighbours and their similarity
    interactions: np.ndarray  # listeners with any engagement in the window (drives λ)
    popularity: dict[str, np.ndarray] = field(default_factory=dict)  # language → listeners who engaged
    index: dict[str, int] = field(init=False)
    groups: dict[str, np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {e: i for i, e in enumerate(self.ids)}
        frame = pd.Series(np.arange(len(self.ids))).groupby(self.canonical_ids)
        self.groups = {c: idx.to_numpy() for c, idx in frame}

    def __len__(self) -> int:
        return len(self.ids)

    def overall_popularity(self) -> np.ndarray:
        if not self.popularity:
            return self.interactions.astype(float)
        return np.sum(list(self.popularity.values()), axis=0)


def warm_start(
    learned: np.ndarray,
    interactions: np.ndarray,
    similarity: sp.csr_matrix,
    params: HybridParams,
) -> tuple[np.ndarray, np.ndarray]:
    """The cold-start schedule applied to factors: ``λ·learned + (1 - λ)·prior``.

    The prior is the similarity-weighted mean of the learned factors of an episode's
    ``prior_neighbors`` most similar episodes that have engagement. λ = interactions /
    ``full_weight_listeners``, capped at 1: a brand-new episode is scored from content alone,
    on the same scale as proven ones, and moves to its own factors as listeners arrive.
    Returns (effective factors, λ).
    """
    lam = np.clip(interactions / max(1, params.full_weight_listeners), 0.0, 1.0)
    engaged = (interactions > 0).astype(np.float32)
    prior = np.zeros_like(learned)
    sim = similarity.tocsr()
    for i in np.flatnonzero(lam < 1.0):
        row = sim.getrow(i)
        cols, weights = row.indices, row.data * engaged[row.indices]
        keep = np.argsort(-weights)[: params.prior_neighbors]
        cols, weights = cols[keep], np.clip(weights[keep], 0.0, None)
        if weights.sum() > 0:
            prior[i] = weights @ learned[cols] / weights.sum()
    return (lam[:, None] * learned + (1.0 - lam[:, None]) * prior).astype(np.float32), lam


@dataclass
class ItemSide:
    """The catalog with the factors each policy scores against, prepared once per model."""

    catalog: Catalog
    learned: np.ndarray  # (n, rank): ALS factors; zeros for episodes the model never saw
    warm: np.ndarray  # (n, rank): after the cold-start schedule
    lam: np.ndarray
    params: HybridParams

    @classmethod
    def build(cls, catalog: Catalog, learned: np.ndarray, params: HybridParams) -> ItemSide:
        warm, lam = warm_start(learned, catalog.interactions, catalog.similarity, params)
        return cls(catalog, learned.astype(np.float32), warm, lam, params)

    @property
    def is_new(self) -> np.ndarray:
        return self.catalog.interactions == 0


def _minmax(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Scale each row to [0, 1] over its candidates (``mask``); constant rows become 0."""
    lo = np.where(mask, values, np.inf).min(axis=1, keepdims=True)
    hi = np.where(mask, values, -np.inf).max(axis=1, keepdims=True)
    span = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(span > 0, (values - lo) / np.where(span > 0, span, 1.0), 0.0)
    return np.where(mask, scaled, 0.0)


def _top_mask(values: np.ndarray, allowed: np.ndarray, n: int) -> np.ndarray:
    """Per row, the ``n`` highest allowed values."""
    masked = np.where(allowed, values, -np.inf)
    if n >= values.shape[1]:
        return allowed.copy()
    top = np.argpartition(-masked, n - 1, axis=1)[:, :n]
    mask = np.zeros_like(allowed)
    np.put_along_axis(mask, top, True, axis=1)
    return mask & allowed


def user_history(users: pd.DataFrame, n_items: int) -> sp.csr_matrix:
    """Positive engagement of each user with each episode, as a sparse (users x items) matrix."""
    rows, cols, vals = [], [], []
    for r, (items, weights) in enumerate(zip(users["history"], users["weights"], strict=True)):
        for i, w in zip(items, weights, strict=True):
            if w > 0:
                rows.append(r)
                cols.append(i)
                vals.append(w)
    return sp.csr_matrix((vals, (rows, cols)), shape=(len(users), n_items), dtype=np.float32)


def _stable_seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def recommend_block(users: pd.DataFrame, items: ItemSide) -> pd.DataFrame:
    """Top-K lists for a block of users.

    ``users`` columns: user_id, locale, policy, factors (list or None), history (episode
    indices), weights (their engagement), exclude (episode indices never to recommend — with
    all their language variants). Returns one row per (user, rank) in ``OUTPUT_COLUMNS``.
    """
    p, cat = items.params, items.catalog
    n, b = len(cat), len(users)
    if b == 0 or n == 0:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)
    rank = items.learned.shape[1]
    has_u = np.array([f is not None and len(f) == rank for f in users["factors"]])
    U = np.zeros((b, rank), dtype=np.float32)
    if has_u.any():
        U[has_u] = np.stack(
            [np.asarray(f, dtype=np.float32) for f, h in zip(users["factors"], has_u, strict=True) if h]
        )
    H = user_history(users, n)
    hist_sum = np.asarray(H.sum(axis=1)).ravel()
    content = np.asarray((H @ cat.similarity).todense(), dtype=np.float32)
    content = np.where(hist_sum[:, None] > 0, content / np.maximum(hist_sum[:, None], 1e-9), 0.0)

    group_of = pd.Series(range(n)).groupby(cat.canonical_ids).ngroup().to_numpy()
    allowed = np.ones((b, n), dtype=bool)
    for r, excluded in enumerate(users["exclude"]):
        if len(excluded):
            allowed[r] = ~np.isin(group_of, group_of[np.asarray(excluded, dtype=int)])

    policies = users["policy"].to_numpy()
    has_factors = np.abs(items.learned).sum(axis=1) > 0
    learned_scores = U @ items.learned.T
    warm_scores = U @ items.warm.T
    use_warm = (policies == "hybrid") & (p.cold_start == "factor")
    als_raw = np.where(use_warm[:, None], warm_scores, learned_scores)
    als_pool = allowed & np.where(use_warm[:, None], True, has_factors[None, :])
    als_cand = _top_mask(als_raw, als_pool & has_u[:, None], p.candidates)
    content_cand = allowed & (content > 0)
    cand = np.where(
        (policies == "als_only")[:, None], als_cand,
        np.where((policies == "content_only")[:, None], content_cand, als_cand | content_cand),
    )  # fmt: skip
    als_n = _minmax(als_raw, cand)
    content_n = _minmax(content, cand)
    # Without the factor schedule an episode the model never saw has no ALS score at all.
    als_n = np.where(use_warm[:, None] | has_factors[None, :], als_n, 0.0)
    w_als = np.full(n, p.als_weight)
    if p.cold_start == "literal":
        w_als = p.als_weight * items.lam  # the seed's schedule on the scores: new = content only
    blended = w_als[None, :] * als_n + (1.0 - w_als[None, :]) * content_n
    score = np.where(
        (policies == "als_only")[:, None], als_n,
        np.where((policies == "content_only")[:, None], content_n, blended),
    )  # fmt: skip

    rows: list[tuple] = []
    for r in range(b):
        user_id, policy, language = users["user_id"].iat[r], policies[r], language_of(users["locale"].iat[r])
        if policy == "random":
            order = np.random.default_rng(_stable_seed(str(user_id))).permutation(np.flatnonzero(allowed[r]))
            for k, (item, _) in enumerate(_select(order, items, group_of, language, p.k)):
                rows.append((user_id, k + 1, item, 0.0, None, None, policy, "random pick (baseline)"))
            continue
        if policy == "popular" or not cand[r].any():
            rows += _popular(user_id, allowed[r], items, group_of, language)
            continue
        ranked = np.flatnonzero(cand[r])
        ranked = ranked[np.argsort(-score[r, ranked], kind="stable")]
        if policy == "hybrid" and p.cold_start == "reserved":
            # Two slots kept for new episodes, filled by content; the rest ranked as usual.
            picks = _select(ranked[~items.is_new[ranked]], items, group_of, language, p.k - p.reserved_slots)
            taken = {group_of[i] for _, i in picks}
            by_content = ranked[np.argsort(-content_n[r, ranked], kind="stable")]
            fresh = by_content[items.is_new[by_content] & (content_n[r, by_content] > 0)]
            fresh = fresh[[group_of[i] not in taken for i in fresh]] if len(fresh) else fresh
            picks += _select(fresh, items, group_of, language, p.k - len(picks))
            if len(picks) < p.k:  # not enough new episodes: the usual ranking fills the slots
                taken = {group_of[i] for _, i in picks}
                rest = ranked[[group_of[i] not in taken for i in ranked]]
                picks += _select(rest, items, group_of, language, p.k - len(picks))
        else:
            picks = _select(ranked, items, group_of, language, p.k)
        history = np.asarray(users["history"].iat[r], dtype=int)
        weight = {"als_only": 1.0, "content_only": 0.0}
        for k, (item, source) in enumerate(picks):
            w = weight.get(policy, w_als[source])
            als_part, content_part = w * als_n[r, source], (1.0 - w) * content_n[r, source]
            reason = _reason(items, source, history, policy, als_part, content_part)
            rows.append((user_id, k + 1, item, float(score[r, source]), float(als_n[r, source]),
                         float(content_n[r, source]), policy, reason))  # fmt: skip
    return _frame(rows, cat)


def language_of(locale: object) -> str:
    """``it-IT`` → ``it``; missing → ``und`` (the catalog's unknown language)."""
    if not isinstance(locale, str) or not locale:
        return "und"
    return locale.replace("_", "-").split("-")[0].lower()


def _variant(members: np.ndarray, items: ItemSide, language: str) -> int:
    """The user's language, else the fallback language, else the most-played variant."""
    if len(members) == 1:
        return int(members[0])
    cat = items.catalog
    for wanted in (language, items.params.fallback_language):
        same = members[cat.language[members] == wanted]
        if len(same):
            return int(same[np.argmax(cat.interactions[same])])
    return int(members[np.argmax(cat.interactions[members])])


def _select(
    order: np.ndarray, items: ItemSide, group_of: np.ndarray, language: str, k: int
) -> list[tuple[int, int]]:
    """Walk ``order`` best first: one variant per canonical episode, at most ``per_show_cap``
    per show. Returns (episode shown, episode whose score earned the place)."""
    cat, cap = items.catalog, items.params.per_show_cap
    picks: list[tuple[int, int]] = []
    groups: set[int] = set()
    shows: dict[str, int] = {}
    for source in order:
        if len(picks) >= k:
            break
        group = group_of[source]
        if group in groups:
            continue
        item = _variant(cat.groups[cat.canonical_ids[source]], items, language)
        show = cat.show[item]
        if show and shows.get(show, 0) >= cap:
            continue
        groups.add(group)
        if show:
            shows[show] = shows.get(show, 0) + 1
        picks.append((item, int(source)))
    return picks


def _popular(
    user_id: str, allowed: np.ndarray, items: ItemSide, group_of: np.ndarray, language: str
) -> list[tuple]:
    """The fallback for listeners without history: what their language's listeners engage with."""
    cat = items.catalog
    popularity, where = cat.popularity.get(language), language
    if popularity is None or popularity.sum() == 0:
        popularity, where = cat.overall_popularity(), "all"
    candidates = np.flatnonzero(allowed)
    order = candidates[np.argsort(-popularity[candidates], kind="stable")]
    top = max(float(popularity.max()), 1.0)
    return [
        (user_id, k + 1, item, float(popularity[source] / top), None, None, "popular",
         f"popular with {where} listeners")
        for k, (item, source) in enumerate(_select(order, items, group_of, language, items.params.k))
    ]  # fmt: skip


def _reason(
    items: ItemSide, source: int, history: np.ndarray, policy: str, als_part: float, content_part: float
) -> str:
    """Why the row is there, in words a listener (or an engineer) can check."""
    cat = items.catalog
    anchor = ""
    if len(history) and cat.similarity.nnz:
        sims = np.asarray(cat.similarity[history][:, source].todense()).ravel()
        if sims.max() > 0:
            anchor = f"“{cat.title[history[int(np.argmax(sims))]]}”"
    if items.is_new[source]:
        return f"new episode, close to {anchor} you listened to" if anchor else "new episode"
    if policy == "content_only" or (content_part > als_part and anchor):
        return f"similar to {anchor} you listened to" if anchor else "similar to what you listened to"
    return "listeners with similar taste engaged with it"


def _frame(rows: list[tuple], cat: Catalog) -> pd.DataFrame:
    out = pd.DataFrame(
        rows, columns=["user_id", "rank", "item", "score", "als_score", "content_score", "policy", "reason"]
    )
    items = out["item"].to_numpy(dtype=int)
    out["episode_id"] = cat.ids[items] if len(out) else pd.Series(dtype=object)
    out["canonical_episode_id"] = cat.canonical_ids[items] if len(out) else pd.Series(dtype=object)
    return out[OUTPUT_COLUMNS]
