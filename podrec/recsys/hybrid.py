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
from typing import Any

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
    hybrid: HybridSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """The cold-start schedule applied to factors: ``λ·learned + (1 - λ)·prior``.

    The prior is the similarity-weighted mean of the learned factors of an episode's
    ``prior_neighbors`` most similar episodes that have engagement. λ = interactions /
    ``full_weight_listeners``, capped at 1: a brand-new episode is scored from content alone,
    on the same scale as proven ones, and moves to its own factors as listeners arrive.
    Returns (effective factors, λ).
    """
    lam = np.clip(interactions / max(1, hybrid.full_weight_listeners), 0.0, 1.0)
    engaged = (interactions > 0).astype(np.float32)
    prior = np.zeros_like(learned)
    sim = similarity.tocsr()
    for i in np.flatnonzero(lam < 1.0):
        row = sim.getrow(i)
        cols, weights = row.indices, row.data * engaged[row.indices]
        keep = np.argsort(-weights)[: hybrid.prior_neighbors]
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
    hybrid: HybridSettings
    is_new: np.ndarray  # no engagement at all in the window (with any variant, when pooled)
    fresh: np.ndarray  # published within ``hybrid.fresh_days`` before the lists' time (``as_of``)

    @classmethod
    def build(
        cls,
        episodes: EpisodeIndex,
        learned: np.ndarray,
        hybrid: HybridSettings,
        pooled: bool = True,
        as_of: float | None = None,
    ) -> ItemSide:
        """``as_of``: when the lists are served (epoch seconds); without it, or without publication
        dates, no episode is fresh."""
        if hybrid.cold_start not in COLD_START_STRATEGIES:
            raise ValueError(f"resolve cold_start {hybrid.cold_start!r} first (with_cold_start)")
        counts = episodes.group_interactions if pooled else episodes.interactions
        warm, lam = warm_start(learned, counts, episodes.similarity, hybrid)
        fresh = np.zeros(len(episodes), dtype=bool)
        if as_of is not None and episodes.published is not None:
            age = as_of - np.nan_to_num(episodes.published, nan=-np.inf)
            fresh = (age >= 0) & (age < hybrid.fresh_days * 86_400)
        return cls(episodes, learned.astype(np.float32), warm, lam, hybrid, counts == 0, fresh)


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


@dataclass(frozen=True)
class Block:
    """What one pass computes once for a whole block of users, before each user's own steps."""

    items: ItemSide
    U: np.ndarray  # (users, rank): each user's ALS factor; zeros without one
    content: sp.csr_matrix  # (users, items): each user's history times the content similarity
    history_weight: np.ndarray  # each user's total positive engagement (normalises ``content``)
    top_als: list[np.ndarray]  # each user's best ALS candidates (one dense pass for the block)
    excluded: list[np.ndarray]  # each user's never-recommend episodes, with their language variants
    use_warm: np.ndarray  # score with the cold-start schedule's factors (hybrid under ``factor``)
    als_weight: np.ndarray  # per episode: the ALS share of the blend (λ-scaled under ``literal``)
    has_factors: np.ndarray  # per episode: the model learned a factor for it
    histories: list[Any]
    weights: list[Any]

    @classmethod
    def of(cls, users: pd.DataFrame, items: ItemSide) -> Block:
        hybrid, cat = items.hybrid, items.episodes
        n, b, rank = len(cat), len(users), items.learned.shape[1]
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
        excluded = [
            _with_variants(np.asarray(e, dtype=int), cat.group_of, cat.members) for e in users["exclude"]
        ]
        policies = users["policy"].to_numpy()
        has_factors = np.abs(items.learned).sum(axis=1) > 0
        use_warm = (policies == "hybrid") & (hybrid.cold_start == "factor")
        literal = hybrid.cold_start == "literal"
        return cls(
            items, U, (H @ cat.similarity).tocsr(), np.asarray(H.sum(axis=1)).ravel(),
            _top_als(U, has_u, use_warm, policies, excluded, items, has_factors), excluded, use_warm,
            hybrid.als_weight * items.lam if literal else np.full(n, hybrid.als_weight), has_factors,
            users["history"].tolist(), users["weights"].tolist(),
        )  # fmt: skip


@dataclass(frozen=True)
class Candidates:
    """One user's candidate episodes (sorted indices) and the content score behind each source."""

    ids: np.ndarray
    content_ids: np.ndarray  # the content source's episodes …
    content_values: np.ndarray  # … and their similarity to the history, per unit of engagement
    followed: dict[int, int]  # the next episode of a followed show → the latest one played before it


def candidates(block: Block, r: int, policy: str, allowed: np.ndarray) -> Candidates:
    """Step 1: the user's ALS candidates, content neighbours of their history and, for the hybrid, the
    next episode of each show they follow — as the policy allows."""
    items = block.items
    lo, hi = block.content.indptr[r], block.content.indptr[r + 1]
    indices, data = block.content.indices[lo:hi], block.content.data[lo:hi]
    keep = allowed[indices] & (data > 0)
    content_ids, content_values = indices[keep], data[keep] / max(block.history_weight[r], 1e-9)
    als_ids = block.top_als[r] if policy in ("hybrid", "als_only") else np.empty(0, dtype=int)
    if policy == "als_only" or len(content_ids) == 0:
        ids = als_ids if policy != "content_only" else content_ids
    elif policy == "content_only" or len(als_ids) == 0:
        ids = content_ids
    else:
        ids = np.union1d(als_ids, content_ids)
    follows = items.hybrid.follow_weight > 0 and bool(items.episodes.show_episodes) and policy == "hybrid"
    followed = (
        next_in_followed_shows(
            block.histories[r], block.weights[r], allowed, items.episodes, items.hybrid.follow_min_episodes
        )
        if follows
        else {}
    )
    if followed:
        ids = np.union1d(ids, np.fromiter(followed, dtype=int))
    return Candidates(np.sort(np.asarray(ids, dtype=int)), content_ids, content_values, followed)


@dataclass(frozen=True)
class Blend:
    """Step 2's scores over the candidates, and each source's normalised part (for the reasons)."""

    score: np.ndarray
    als: np.ndarray  # ALS score, min-max normalised over the candidates the model can score
    content: np.ndarray  # content score, min-max normalised
    als_weight: np.ndarray  # the ALS share of the ALS/content blend, per candidate
    follow_weight: float  # 0 when no followed show has a next episode
    fresh: np.ndarray | float  # the content score of fresh candidates (0 elsewhere)
    fresh_weight: float  # 0 when no candidate is fresh

    def parts(self, j: int) -> tuple[float, float]:
        """(ALS part, content part) of candidate ``j``'s score: what its reason credits."""
        rest = 1.0 - self.follow_weight - self.fresh_weight
        fresh = self.fresh_weight * self.fresh[j] if self.fresh_weight else 0.0
        content = rest * (1.0 - self.als_weight[j]) * self.content[j] + fresh
        return rest * self.als_weight[j] * self.als[j], content


def blend(block: Block, r: int, policy: str, found: Candidates) -> Blend:
    """Step 2: normalise each source's scores per user and blend them. ALS and content share
    ``1 - follow_weight - fresh_weight`` by ``als_weight``; a followed show's next episode and fresh
    episodes close to the history take their own weights."""
    items, ids = block.items, found.ids
    factors = items.warm if block.use_warm[r] else items.learned
    # Without the factor schedule a new episode has no ALS score.
    scored = block.use_warm[r] | block.has_factors[ids]
    als = np.where(scored, _minmax(factors[ids] @ block.U[r], scored), 0.0)
    content = _minmax(_gather(found.content_ids, found.content_values, ids), np.ones(len(ids), dtype=bool))
    als_weight = {"als_only": np.ones(len(ids)), "content_only": np.zeros(len(ids))}.get(
        policy, block.als_weight[ids]
    )
    follow_weight = items.hybrid.follow_weight if found.followed else 0.0
    follow = (
        np.isin(ids, np.fromiter(found.followed, dtype=int)).astype(np.float32) if found.followed else 0.0
    )
    # New episodes close to the listener's history: content alone knows them before ALS does.
    fresh = items.fresh[ids] * content if policy == "hybrid" and items.hybrid.fresh_weight > 0 else 0.0
    fresh_weight = items.hybrid.fresh_weight if np.any(fresh) else 0.0
    rest = 1.0 - follow_weight - fresh_weight
    score = (
        rest * (als_weight * als + (1.0 - als_weight) * content)
        + follow_weight * follow
        + fresh_weight * fresh
    )
    return Blend(score, als, content, als_weight, follow_weight, fresh, fresh_weight)


def rerank(
    items: ItemSide, policy: str, ids: np.ndarray, blended: Blend, language: str
) -> list[tuple[int, int]]:
    """Step 3: the list, as (episode, candidate it stands for) — one variant per canonical episode in the
    listener's language, at most ``per_show_cap`` a show; the hybrid keeps slots for new episodes
    (``reserved``) or trades score for content distance (``rerank_weight``)."""
    group_of, hybrid = items.episodes.group_of, items.hybrid
    order = np.argsort(-blended.score, kind="stable")
    if policy == "hybrid" and hybrid.cold_start == "reserved":
        return _reserved(ids, order, blended.content, items, group_of, language)
    if policy == "hybrid" and hybrid.rerank_weight > 0 and items.episodes.similarity.nnz:
        return _mmr(ids, blended.score, items, group_of, language)
    return _select(ids[order], items, group_of, language, hybrid.k)


def recommend_block(users: pd.DataFrame, items: ItemSide) -> pd.DataFrame:
    """Top-K lists for a block of users.

    ``users`` columns: user_id, locale, policy, factors (list or None), history (episode
    indices), weights (their engagement), exclude (episode indices never to recommend — with
    all their language variants). Returns one row per (user, rank) in ``OUTPUT_COLUMNS``.

    One dense pass per block (``Block.of``) finds each user's top ALS candidates (a matrix product and
    a partial sort); then each user's few hundred candidates go through the steps: ``candidates`` →
    ``blend`` → ``rerank`` → a fill from popularity when the caps leave the list short → ``reasons``
    (for the whole block at once).
    """
    cat, k = items.episodes, items.hybrid.k
    if len(users) == 0 or len(cat) == 0:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)
    block = Block.of(users, items)
    rows: list[tuple] = []
    # (row position, user, source episode, policy, ALS part, content part, followed show's last played)
    explained: list[tuple] = []
    user_ids, policies = users["user_id"].tolist(), users["policy"].tolist()
    locales = users["locale"].tolist()
    for r, (user_id, policy) in enumerate(zip(user_ids, policies, strict=True)):
        language = language_of(locales[r])
        allowed = np.ones(len(cat), dtype=bool)
        allowed[block.excluded[r]] = False
        if policy == "random":
            order = np.random.default_rng(_stable_seed(str(user_id))).permutation(np.flatnonzero(allowed))
            for rank, (item, _) in enumerate(_select(order, items, cat.group_of, language, k)):
                rows.append((user_id, rank + 1, item, 0.0, None, None, policy, "random pick (baseline)"))
            continue
        found = candidates(block, r, policy, allowed) if policy != "popular" else None
        if found is None or len(found.ids) == 0:
            rows += _popular(user_id, allowed, items, cat.group_of, language)
            continue
        blended = blend(block, r, policy, found)
        picks = rerank(items, policy, found.ids, blended, language)
        filled, where = len(picks), ""
        if filled < k:
            picks, _, where = _popular_fill(picks, allowed, items, cat.group_of, language)
        for rank, (item, source) in enumerate(picks):
            if rank >= filled:
                rows.append(
                    (user_id, rank + 1, item, 0.0, None, None, policy, f"popular with {where} listeners")
                )
                continue
            j = int(np.searchsorted(found.ids, source))
            explained.append((len(rows), r, source, policy, *blended.parts(j), found.followed.get(source)))
            rows.append((user_id, rank + 1, item, float(blended.score[j]), float(blended.als[j]),
                         float(blended.content[j]), policy, ""))  # fmt: skip
    return _frame(reasons(items, block.histories, rows, explained), cat)


def reasons(items: ItemSide, histories: list[Any], rows: list[tuple], explained: list[tuple]) -> list[tuple]:
    """Step 4: each kept row's reason, the anchors (the listened episode it is closest to) found for the
    whole block at once."""
    cat = items.episodes
    anchors = _anchors(items, histories, [(r, source) for _, r, source, *_ in explained])
    for (at, _, source, policy, als_part, content_part, last), anchor in zip(explained, anchors, strict=True):
        reason = (
            f"next episode of a show you follow, after “{cat.title[last]}”"
            if last is not None
            else _reason(items, source, anchor, policy, als_part, content_part)
        )
        rows[at] = (*rows[at][:-1], reason)
    return rows


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
        c = min(items.hybrid.candidates, scores.shape[1])
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
    hybrid = items.hybrid
    ranked = cand[order]
    picks = _select(
        ranked[~items.is_new[ranked]], items, group_of, language, hybrid.k - hybrid.reserved_slots
    )
    taken = {group_of[i] for _, i in picks}
    by_content = np.argsort(-content_n, kind="stable")
    fresh = cand[by_content][items.is_new[cand[by_content]] & (content_n[by_content] > 0)]
    fresh = np.array([i for i in fresh if group_of[i] not in taken], dtype=int)
    picks += _select(fresh, items, group_of, language, hybrid.k - len(picks))
    if len(picks) < hybrid.k:  # not enough new episodes: the usual ranking fills the slots
        taken = {group_of[i] for _, i in picks}
        rest = np.array([i for i in ranked if group_of[i] not in taken], dtype=int)
        picks += _select(rest, items, group_of, language, hybrid.k - len(picks))
    return picks


def _variant(members: np.ndarray, items: ItemSide, language: str) -> int:
    """One variant of a canonical episode for the listener (podrec.language.pick_variant)."""
    if len(members) == 1:
        return int(members[0])
    cat = items.episodes
    chosen = pick_variant(
        cat.language[members].tolist(), cat.interactions[members].tolist(), language,
        items.hybrid.fallback_language,
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
        if show and self.shows.get(show, 0) >= self.items.hybrid.per_show_cap:
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
    r = items.hybrid.rerank_weight
    near = items.episodes.similarity[cand][:, cand].toarray()
    near = np.clip(np.maximum(near, near.T), 0.0, None)
    picks = _Picks(items, group_of, language, items.hybrid.k)
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
    filling = _Picks(items, group_of, language, items.hybrid.k)
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
    if items.fresh[source] and policy == "hybrid" and items.hybrid.fresh_weight > 0 and anchor:
        return f"published in the last {items.hybrid.fresh_days} days, close to {anchor} you listened to"
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
