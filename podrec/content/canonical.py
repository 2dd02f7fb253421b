"""Which episodes are language variants of one another: ``canonical_episode_id``.

The rule uses only metadata PodcastIndex provides, and is conservative: two genuinely
different episodes must never merge, so every condition must hold.

Episodes A and B are variants when
1. they come from different feeds, in different known languages;
2. they carry the same episode and season numbers;
3. they were published within ``max_publish_gap`` of each other;
4. their durations differ by at most ``max_duration_ratio`` (when both are known);
5. their two feeds publish in parallel: the pairs between them that pass 2 to 4 number at
   least ``min_feed_pairs`` and cover ``min_feed_coverage`` of the smaller feed's numbered
   episodes. Coincidences (two weekly shows both airing "episode 3" the same day) happen;
   a translated show mirrors its original episode after episode.
Variants form groups (transitively); a group that would hold two episodes of one feed is
dissolved, since a feed never publishes the same episode twice. The canonical id of a
group is its smallest episode id, so it is stable while the group is stable.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import combinations


@dataclass(frozen=True)
class EpisodeKey:
    """The metadata the rule looks at."""

    episode_id: str
    feed_id: str
    language: str
    episode_number: int | None
    season: int | None
    published_at: datetime
    duration_s: int | None


@dataclass(frozen=True)
class VariantRule:
    max_publish_gap: timedelta = timedelta(hours=24)
    max_duration_ratio: float = 0.10
    min_feed_pairs: int = 3
    min_feed_coverage: float = 0.8


def _compatible(a: EpisodeKey, b: EpisodeKey, rule: VariantRule) -> bool:
    if a.feed_id == b.feed_id or a.language == b.language or "und" in (a.language, b.language):
        return False
    if abs(a.published_at - b.published_at) > rule.max_publish_gap:
        return False
    if a.duration_s and b.duration_s:
        longer = max(a.duration_s, b.duration_s)
        if abs(a.duration_s - b.duration_s) > rule.max_duration_ratio * longer:
            return False
    return True


def canonical_ids(episodes: Iterable[EpisodeKey], rule: VariantRule = VariantRule()) -> dict[str, str]:
    """episode_id → canonical_episode_id for every episode given (itself when it has no variant)."""
    episodes = list(episodes)
    by_number: dict[tuple[int, int | None], list[EpisodeKey]] = defaultdict(list)
    for e in episodes:
        if e.episode_number is not None:
            by_number[(e.episode_number, e.season)].append(e)

    candidates: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for group in by_number.values():
        for a, b in combinations(sorted(group, key=lambda e: e.episode_id), 2):
            if _compatible(a, b, rule):
                feeds = tuple(sorted((a.feed_id, b.feed_id)))
                candidates[feeds].append((a.episode_id, b.episode_id))

    parent = {e.episode_id: e.episode_id for e in episodes}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    numbered = Counter(e.feed_id for e in episodes if e.episode_number is not None)
    for (feed_a, feed_b), pairs in candidates.items():
        needed = max(rule.min_feed_pairs, rule.min_feed_coverage * min(numbered[feed_a], numbered[feed_b]))
        if len(pairs) < needed:
            continue
        for a, b in pairs:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)

    feed_of = {e.episode_id: e.feed_id for e in episodes}
    groups: dict[str, list[str]] = defaultdict(list)
    for e in episodes:
        groups[find(e.episode_id)].append(e.episode_id)
    result = {}
    for members in groups.values():
        feeds = [feed_of[m] for m in members]
        if len(set(feeds)) < len(feeds):
            result.update({m: m for m in members})  # ambiguous: keep them apart
        else:
            canonical = min(members)
            result.update({m: canonical for m in members})
    return result
