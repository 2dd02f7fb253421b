"""The recommendation rules (docs/design.md, Rules), as plain numpy over one block of users.

Everything that decides what is in a list lives here: ALS and content candidates, the next
unplayed episode of each show the listener follows, per-user normalisation, the blend, the
cold-start strategies, the MMR re-ranking, one variant per canonical episode in the listener's
language, the per-show cap, completed episodes left out, popularity for listeners without history
(and to fill a list the caps leave short), and the reason each row is there. The same function
serves the daily ``gold/recommendations`` asset (inside Spark's ``mapInPandas``, one block per
batch) and the offline evaluation (in-process), so what is evaluated is what is served.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from podrec.language import language_of, pick_variant
from podrec.settings import COLD_START_STRATEGIES, HybridSettings

POLICIES = ("hybrid", "als_only", "content_only", "popular", "random")
OUTPUT_COLUMNS = [
    "user_id", "rank", "episode_id", "canonical_episode_id", "score", "als_score", "content_score",
    "policy", "reason",
]  # fmt: skip


def with_cold_start(hybrid: HybridSettings, strategy: str | None = None) -> HybridSettings:
    """The rules with a concrete cold-start strategy: ``strategy``, else the configured one, where
    ``auto`` (resolved from the evaluation by the recommendations asset) reads as ``factor``."""
    chosen = strategy or hybrid.cold_start
    chosen = "factor" if chosen == "auto" else chosen
    if chosen not in COLD_START_STRATEGIES:
        raise ValueError(f"cold_start must be one of {COLD_START_STRATEGIES}, got {chosen!r}")
    return hybrid.updated(cold_start=chosen)


@dataclass
class EpisodeIndex:
    """The item side: one entry per episode, in a fixed order (index = position)."""

    ids: np.ndarray
    canonical_ids: np.ndarray
    show: np.ndarray  # show (feed) of each episode; "" when unknown, then no cap applies
    language: np.ndarray
    title: np.ndarray
    similarity: sp.csr_matrix  # row i: episode i's content neighbours and their similarity
    interactions: np.ndarray  # listeners with any engagement in the window (drives λ)
    popularity: dict[str, np.ndarray] = field(default_factory=dict)  # language → listeners who engaged
    published: np.ndarray | None = None  # publication time (epoch seconds, NaN unknown): a show's order
    index: dict[str, int] = field(init=False)
    group_of: np.ndarray = field(init=False)  # each episode's canonical group number
    members: list[np.ndarray] = field(init=False)  # each group's episodes (its language variants)
    group_interactions: np.ndarray = field(init=False)  # listeners of any variant of each episode
    show_episodes: dict[str, np.ndarray] = field(init=False)  # show → its dated episodes, oldest first

    def __post_init__(self) -> None:
        self.index = {e: i for i, e in enumerate(self.ids)}
        self.group_of = pd.Series(range(len(self.ids))).groupby(self.canonical_ids).ngroup().to_numpy()
        order = np.argsort(self.group_of, kind="stable")
        self.members = np.split(order, np.flatnonzero(np.diff(self.group_of[order])) + 1)
        self.group_interactions = np.bincount(self.group_of, weights=self.interactions)[self.group_of]
        self.show_episodes = {}
        if self.published is not None:
            dated = np.flatnonzero(np.isfinite(self.published) & (self.show != ""))
            dated = dated[np.lexsort((self.published[dated], self.show[dated].astype(str)))]
            shows = self.show[dated]
            for show in dict.fromkeys(shows.tolist()):
                self.show_episodes[show] = dated[shows == show]

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
    params: HybridSettings,
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
    """The episodes with the factors each policy scores against, prepared once per model.

    ``pooled`` (the model was fitted on canonical episodes, ``learned`` holds each variant's canonical
    factors): an episode's evidence is that of all its variants, so a new translation of a known
    episode is neither new nor on a content prior.
    """

    episodes: EpisodeIndex
    learned: np.ndarray  # (n, rank): ALS factors; zeros for episodes the model never saw
    warm: np.ndarray  # (n, rank): after the cold-start schedule
    lam: np.ndarray
    params: HybridSettings
    is_new: np.ndarray  # no engagement at all in the window (with any variant, when pooled)
    fresh: np.ndarray  # published within ``params.fresh_days`` before the lists' time (``as_of``)

    @classmethod
    def build(
        cls,
        episodes: EpisodeIndex,
        learned: np.ndarray,
        params: HybridSettings,
        pooled: bool = True,
        as_of: float | None = None,
    ) -> ItemSide:
        """``as_of``: when the lists are served (epoch seconds); without it, or without publication
        dates, no episode is fresh."""
        if params.cold_start not in COLD_START_STRATEGIES:
            raise ValueError(f"resolve cold_start {params.cold_start!r} first (with_cold_start)")
        counts = episodes.group_interactions if pooled else episodes.interactions
        warm, lam = warm_start(learned, counts, episodes.similarity, params)
        fresh = np.zeros(len(episodes), dtype=bool)
        if as_of is not None and episodes.published is not None:
            age = as_of - np.nan_to_num(episodes.published, nan=-np.inf)
            fresh = (age >= 0) & (age < params.fresh_days * 86_400)
        return cls(episodes, learned.astype(np.float32), warm, lam, params, counts == 0, fresh)


def _minmax(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] over the entries in ``mask``; a constant set carries no preference (0)."""
    if not mask.any():
        return np.zeros(len(values), dtype=np.float32)
    lo, hi = values[mask].min(), values[mask].max()
    if hi <= lo:
        return np.zeros(len(values), dtype=np.float32)
    return np.where(mask, (values - lo) / (hi - lo), 0.0).astype(np.float32)


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

    One dense pass per block finds each user's top ALS candidates (a matrix product and a
    partial sort); everything else — content candidates, normalisation, the blend, variants,
    the show cap — works on each user's few hundred candidates only.
    """
    p, cat = items.params, items.episodes
    n, b = len(cat), len(users)
    if b == 0 or n == 0:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)
    follows = p.follow_weight > 0 and bool(cat.show_episodes)
    rank = items.learned.shape[1]
    # A listener whose window holds only negative engagement (early skips) gets an all-zero ALS
    # factor: it ranks every episode equal, so it counts as no factor — popularity serves them.
    has_u = np.array(
        [f is not None and len(f) == rank and bool(np.any(np.asarray(f))) for f in users["factors"]]
    )
    U = np.zeros((b, rank), dtype=np.float32)
    if has_u.any():
        U[has_u] = np.stack(
            [np.asarray(f, dtype=np.float32) for f, h in zip(users["factors"], has_u, strict=True) if h]
        )
    H = user_history(users, n)
    hist_sum = np.asarray(H.sum(axis=1)).ravel()
    content = (H @ cat.similarity).tocsr()
    group_of, members = cat.group_of, cat.members
    excluded = [_with_variants(np.asarray(e, dtype=int), group_of, members) for e in users["exclude"]]

    policies = users["policy"].to_numpy()
    has_factors = np.abs(items.learned).sum(axis=1) > 0
    use_warm = (policies == "hybrid") & (p.cold_start == "factor")
    w_items = p.als_weight * items.lam if p.cold_start == "literal" else np.full(n, p.als_weight)
    top_als = _top_als(U, has_u, use_warm, policies, excluded, items, has_factors)

    rows: list[tuple] = []
    # (row position, user, source episode, policy, ALS part, content part, followed show's last played)
    explained: list[tuple] = []
    user_ids, locales, histories, weights = (
        users["user_id"].tolist(),
        users["locale"].tolist(),
        users["history"].tolist(),
        users["weights"].tolist(),
    )
    for r in range(b):
        user_id, policy, language = user_ids[r], policies[r], language_of(locales[r])
        allowed = np.ones(n, dtype=bool)
        allowed[excluded[r]] = False
        if policy == "random":
            order = np.random.default_rng(_stable_seed(str(user_id))).permutation(np.flatnonzero(allowed))
            for k, (item, _) in enumerate(_select(order, items, group_of, language, p.k)):
                rows.append((user_id, k + 1, item, 0.0, None, None, policy, "random pick (baseline)"))
            continue
        lo, hi = content.indptr[r], content.indptr[r + 1]
        indices, data = content.indices[lo:hi], content.data[lo:hi]
        keep = allowed[indices] & (data > 0)
        content_cand, content_val = indices[keep], data[keep] / max(hist_sum[r], 1e-9)
        als_cand = top_als[r] if policy in ("hybrid", "als_only") else np.empty(0, dtype=int)
        if policy == "als_only" or len(content_cand) == 0:
            cand = als_cand if policy != "content_only" else content_cand
        elif policy == "content_only" or len(als_cand) == 0:
            cand = content_cand
        else:
            cand = np.union1d(als_cand, content_cand)
        followed = (
            next_in_followed_shows(histories[r], weights[r], allowed, cat, p.follow_min_episodes)
            if follows and policy == "hybrid"
            else {}
        )
        if followed:
            cand = np.union1d(cand, np.fromiter(followed, dtype=int))
        if policy == "popular" or len(cand) == 0:
            rows += _popular(user_id, allowed, items, group_of, language)
            continue
        cand = np.sort(np.asarray(cand, dtype=int))
        factors = items.warm if use_warm[r] else items.learned
        scored = use_warm[r] | has_factors[cand]  # without the factor schedule a new episode has no ALS score
        als_n = np.where(scored, _minmax(factors[cand] @ U[r], scored), 0.0)
        content_n = _minmax(_gather(content_cand, content_val, cand), np.ones(len(cand), dtype=bool))
        w = {"als_only": np.ones(len(cand)), "content_only": np.zeros(len(cand))}.get(policy, w_items[cand])
        f = p.follow_weight if followed else 0.0
        follow_n = np.isin(cand, np.fromiter(followed, dtype=int)).astype(np.float32) if followed else 0.0
        # New episodes close to the listener's history: content alone knows them before ALS does.
        fresh_n = items.fresh[cand] * content_n if policy == "hybrid" and p.fresh_weight > 0 else 0.0
        g = p.fresh_weight if np.any(fresh_n) else 0.0
        score = (1.0 - f - g) * (w * als_n + (1.0 - w) * content_n) + f * follow_n + g * fresh_n
        order = np.argsort(-score, kind="stable")
        if policy == "hybrid" and p.cold_start == "reserved":
            picks = _reserved(cand, order, content_n, items, group_of, language)
        elif policy == "hybrid" and p.rerank_weight > 0 and cat.similarity.nnz:
            picks = _mmr(cand, score, items, group_of, language)
        else:
            picks = _select(cand[order], items, group_of, language, p.k)
        filled, where = len(picks), ""
        if filled < p.k:
            picks, _, where = _popular_fill(picks, allowed, items, group_of, language)
        for k, (item, source) in enumerate(picks):
            if k >= filled:
                rows.append(
                    (user_id, k + 1, item, 0.0, None, None, policy, f"popular with {where} listeners")
                )
                continue
            j = int(np.searchsorted(cand, source))
            parts = (
                (1.0 - f - g) * w[j] * als_n[j],
                (1.0 - f - g) * (1.0 - w[j]) * content_n[j] + (g * fresh_n[j] if g else 0.0),
            )
            explained.append((len(rows), r, source, policy, *parts, followed.get(source)))
            rows.append((user_id, k + 1, item, float(score[j]), float(als_n[j]), float(content_n[j]), policy,
                         ""))  # fmt: skip
    # Reasons for the kept rows only, their anchors found for the whole block at once.
    anchors = _anchors(items, histories, [(r, source) for _, r, source, *_ in explained])
    for (at, _, source, policy, als_part, content_part, last), anchor in zip(explained, anchors, strict=True):
        reason = (
            f"next episode of a show you follow, after “{cat.title[last]}”"
            if last is not None
            else _reason(items, source, anchor, policy, als_part, content_part)
        )
        rows[at] = (*rows[at][:-1], reason)
    return _frame(rows, cat)


def next_in_followed_shows(
    history: np.ndarray | list[int],
    weights: np.ndarray | list[float],
    allowed: np.ndarray,
    cat: EpisodeIndex,
    min_episodes: int,
) -> dict[int, int]:
    """The "shows continue" source: {next unplayed episode: the latest episode played before it}, one per
    followed show.

    A listener follows a show once they engaged positively with ``min_episodes`` of its episodes in the
    window. Its next episode is the first one, in publication order, after the latest they engaged with
    that they never played in any language (and may be recommended); a listener who is caught up gets
    none. Shows without publication dates have no order, so no next episode.
    """
    if len(history) == 0:  # a list, or an array in the Spark path
        return {}
    played = np.asarray(history, dtype=int)
    liked = played[np.asarray(weights, dtype=float) > 0]
    shows = cat.show[liked]
    out: dict[int, int] = {}
    heard_groups = set(cat.group_of[played].tolist())
    for show in set(shows.tolist()) & cat.show_episodes.keys():
        mine = liked[shows == show]
        if len(set(cat.group_of[mine].tolist())) < min_episodes:
            continue
        last = int(mine[np.argmax(cat.published[mine])])
        for episode in cat.show_episodes[show]:
            if cat.published[episode] <= cat.published[last] or cat.group_of[episode] in heard_groups:
                continue
            if allowed[episode]:
                out[int(episode)] = last
            break
    return out


def _gather(keys: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``values`` of ``wanted`` keys (0 where a key is missing)."""
    out = np.zeros(len(wanted), dtype=np.float32)
    if len(keys) == 0:
        return out
    order = np.argsort(keys)
    pos = np.clip(np.searchsorted(keys[order], wanted), 0, len(keys) - 1)
    hit = keys[order][pos] == wanted
    out[hit] = values[order][pos[hit]]
    return out


def _with_variants(excluded: np.ndarray, group_of: np.ndarray, members: list[np.ndarray]) -> np.ndarray:
    """Excluded episodes and every language variant of them."""
    if len(excluded) == 0:
        return excluded
    return np.concatenate([members[g] for g in np.unique(group_of[excluded])])


def _top_als(
    U: np.ndarray,
    has_u: np.ndarray,
    use_warm: np.ndarray,
    policies: np.ndarray,
    excluded: list[np.ndarray],
    items: ItemSide,
    has_factors: np.ndarray,
) -> list[np.ndarray]:
    """Each user's ``candidates`` best allowed episodes by ALS score: the block's one dense pass."""
    empty = np.empty(0, dtype=int)
    wanted = has_u & np.isin(policies, ("hybrid", "als_only"))
    out = [empty] * len(U)
    for warm in (True, False):
        rows = np.flatnonzero(wanted & (use_warm == warm))
        if len(rows) == 0:
            continue
        scores = U[rows] @ (items.warm if warm else items.learned).T
        if not warm:
            scores[:, ~has_factors] = -np.inf
        for j, r in enumerate(rows):
            scores[j, excluded[r]] = -np.inf
        c = min(items.params.candidates, scores.shape[1])
        top = (
            np.argpartition(-scores, c - 1, axis=1)[:, :c]
            if c < scores.shape[1]
            else np.argsort(-scores, axis=1)
        )
        for j, r in enumerate(rows):
            out[r] = top[j][np.isfinite(scores[j, top[j]])]
    return out


def _reserved(
    cand: np.ndarray,
    order: np.ndarray,
    content_n: np.ndarray,
    items: ItemSide,
    group_of: np.ndarray,
    language: str,
) -> list[tuple[int, int]]:
    """Two slots kept for new episodes, filled by content; the rest ranked as usual."""
    p = items.params
    ranked = cand[order]
    picks = _select(ranked[~items.is_new[ranked]], items, group_of, language, p.k - p.reserved_slots)
    taken = {group_of[i] for _, i in picks}
    by_content = np.argsort(-content_n, kind="stable")
    fresh = cand[by_content][items.is_new[cand[by_content]] & (content_n[by_content] > 0)]
    fresh = np.array([i for i in fresh if group_of[i] not in taken], dtype=int)
    picks += _select(fresh, items, group_of, language, p.k - len(picks))
    if len(picks) < p.k:  # not enough new episodes: the usual ranking fills the slots
        taken = {group_of[i] for _, i in picks}
        rest = np.array([i for i in ranked if group_of[i] not in taken], dtype=int)
        picks += _select(rest, items, group_of, language, p.k - len(picks))
    return picks


def _variant(members: np.ndarray, items: ItemSide, language: str) -> int:
    """One variant of a canonical episode for the listener (podrec.language.pick_variant)."""
    if len(members) == 1:
        return int(members[0])
    cat = items.episodes
    chosen = pick_variant(
        cat.language[members].tolist(), cat.interactions[members].tolist(), language,
        items.params.fallback_language,
    )  # fmt: skip
    return int(members[chosen])


class _Picks:
    """One list as it fills: one variant per canonical episode, at most ``per_show_cap`` per show.
    ``picks`` holds (episode shown, episode whose score earned the place)."""

    def __init__(self, items: ItemSide, group_of: np.ndarray, language: str, k: int) -> None:
        self.items, self.group_of, self.language, self.k = items, group_of, language, k
        self.picks: list[tuple[int, int]] = []
        self.groups: set[int] = set()
        self.shows: dict[str, int] = {}

    @property
    def full(self) -> bool:
        return len(self.picks) >= self.k

    def offer(self, source: int) -> bool:
        """Add ``source`` (as the listener's variant) unless its episode or its show is already served."""
        cat = self.items.episodes
        group = self.group_of[source]
        if group in self.groups:
            return False
        item = _variant(cat.members[group], self.items, self.language)
        show = cat.show[item]
        if show and self.shows.get(show, 0) >= self.items.params.per_show_cap:
            return False
        self.groups.add(group)
        if show:
            self.shows[show] = self.shows.get(show, 0) + 1
        self.picks.append((item, int(source)))
        return True


def _select(
    order: np.ndarray, items: ItemSide, group_of: np.ndarray, language: str, k: int
) -> list[tuple[int, int]]:
    """Walk ``order`` best first into a list (``_Picks``'s rules)."""
    picks = _Picks(items, group_of, language, k)
    for source in order:
        if picks.full:
            break
        picks.offer(int(source))
    return picks.picks


def _mmr(
    cand: np.ndarray, score: np.ndarray, items: ItemSide, group_of: np.ndarray, language: str
) -> list[tuple[int, int]]:
    """Maximal marginal relevance: each next pick maximises ``(1 - r)·score - r·nearest``, where
    nearest is its highest content similarity to the picks already made (either direction of the
    top-K neighbour lists; none → 0). ``r`` = ``rerank_weight``; ties go to the earlier candidate."""
    r = items.params.rerank_weight
    near = items.episodes.similarity[cand][:, cand].toarray()
    near = np.clip(np.maximum(near, near.T), 0.0, None)
    picks = _Picks(items, group_of, language, items.params.k)
    nearest = np.zeros(len(cand), dtype=np.float32)
    alive = np.ones(len(cand), dtype=bool)
    while alive.any() and not picks.full:
        j = int(np.argmax(np.where(alive, (1.0 - r) * score - r * nearest, -np.inf)))
        alive[j] = False
        if picks.offer(int(cand[j])):
            nearest = np.maximum(nearest, near[j])
    return picks.picks


def _popular_fill(
    picks: list[tuple[int, int]], allowed: np.ndarray, items: ItemSide, group_of: np.ndarray, language: str
) -> tuple[list[tuple[int, int]], np.ndarray, str]:
    """``picks`` continued from popularity by the same rules up to K — a whole list for a listener
    without history, the rest of one the caps left short (few candidates, most from one show).
    Popularity is engagement among the language's listeners, else among all; returned with its name."""
    popularity, where = items.episodes.popularity.get(language), language
    if popularity is None or popularity.sum() == 0:
        popularity, where = items.episodes.overall_popularity(), "all"
    filling = _Picks(items, group_of, language, items.params.k)
    for _, source in picks:
        filling.offer(source)
    candidates = np.flatnonzero(allowed)
    for source in candidates[np.argsort(-popularity[candidates], kind="stable")]:
        if filling.full:
            break
        filling.offer(int(source))
    return filling.picks, popularity, where


def _popular(
    user_id: str, allowed: np.ndarray, items: ItemSide, group_of: np.ndarray, language: str
) -> list[tuple]:
    """The fallback for listeners without history: what their language's listeners engage with."""
    picks, popularity, where = _popular_fill([], allowed, items, group_of, language)
    top = max(float(popularity.max()), 1.0)
    return [
        (user_id, k + 1, item, float(popularity[source] / top), None, None, "popular",
         f"popular with {where} listeners")
        for k, (item, source) in enumerate(picks)
    ]  # fmt: skip


def _anchors(items: ItemSide, histories: list, wanted: list[tuple[int, int]]) -> list[str]:
    """For each (user, episode) in ``wanted``, the quoted title of the user's history episode most
    similar to it ("" when none is); ties go to the earlier history entry. Vectorised over the block:
    one sparse slice of the similarity rows of every history, one sort."""
    cat = items.episodes
    if not wanted or cat.similarity.nnz == 0:
        return [""] * len(wanted)
    lengths = [len(h) for h in histories]
    history = (
        np.concatenate([np.asarray(h, dtype=int) for h in histories]) if sum(lengths) else np.empty(0, int)
    )
    owner = np.repeat(np.arange(len(histories)), lengths)
    position = np.arange(len(history)) - np.repeat(np.cumsum([0, *lengths[:-1]]), lengths)
    near = cat.similarity[history].tocoo()
    n = len(cat)
    keys = owner[near.row].astype(np.int64) * n + near.col
    want = np.array([u * n + e for u, e in wanted], dtype=np.int64)
    keep = np.isin(keys, want) & (near.data > 0)
    keys, data, row = keys[keep], near.data[keep], near.row[keep]
    order = np.lexsort((position[row], -data, keys))  # per key: most similar first, then earliest
    keys, row = keys[order], row[order]
    first = np.concatenate([[True], keys[1:] != keys[:-1]]) if len(keys) else np.empty(0, bool)
    best = dict(zip(keys[first].tolist(), history[row[first]].tolist(), strict=True))
    return [f"“{cat.title[best[k]]}”" if k in best else "" for k in want.tolist()]


def _reason(
    items: ItemSide, source: int, anchor: str, policy: str, als_part: float, content_part: float
) -> str:
    """Why the row is there, in words a listener (or an engineer) can check."""
    if items.is_new[source]:
        return f"new episode, close to {anchor} you listened to" if anchor else "new episode"
    if items.fresh[source] and policy == "hybrid" and items.params.fresh_weight > 0 and anchor:
        return f"published in the last {items.params.fresh_days} days, close to {anchor} you listened to"
    if policy == "content_only" or (content_part > als_part and anchor):
        return f"similar to {anchor} you listened to" if anchor else "similar to what you listened to"
    return "listeners with similar taste engaged with it"


def _frame(rows: list[tuple], cat: EpisodeIndex) -> pd.DataFrame:
    out = pd.DataFrame(
        rows, columns=["user_id", "rank", "item", "score", "als_score", "content_score", "policy", "reason"]
    )
    items = out["item"].to_numpy(dtype=int)
    out["episode_id"] = cat.ids[items] if len(out) else pd.Series(dtype=object)
    out["canonical_episode_id"] = cat.canonical_ids[items] if len(out) else pd.Series(dtype=object)
    return out[OUTPUT_COLUMNS]
