"""A synthetic episode catalog of any size, deterministic by seed, shaped like PodcastIndex.

What makes it worth recommending from at scale:
- shows have a topic and a language; episodes are described with their topic's vocabulary, so
  transcript (description) similarity means something;
- show sizes and trend scores are heavy-tailed, like real directories;
- some shows are translated: a second feed in another language publishes the same episodes
  (same numbers, within hours, similar durations), so they become language variants;
- episodes keep arriving: a share is published after the catalog's start, spread over the
  following weeks, so every day brings new episodes.

The catalog is generated as PodcastIndex feeds and items and read with the same parser as the
live API and the bundled sample (``episode_rows``), so the offline default and this one exercise
the real parsing path. Generation depends only on (episodes, shows, seed, start).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

import numpy as np

from podrec.content.podcastindex import ParseReport, episode_rows

# Each topic's words: an episode description is drawn from its show's topic (and a few shared words).
TOPICS: dict[str, tuple[str, ...]] = {
    topic: tuple(words.split())
    for topic, words in {
        "Technology": "software cloud startup programming algorithm data chip robot internet security "
        "opensource developer learning database apps",
        "Science": "physics biology experiment telescope genome climate chemistry evolution particle fossil "
        "laboratory hypothesis quantum species research",
        "History": "empire medieval revolution archive dynasty battle ancient treaty colonial monarchy "
        "civilisation manuscript war republic century",
        "Business": "market investor revenue strategy founder economy inflation negotiation leadership "
        "profit trade stock management finance merger",
        "Comedy": "joke sketch laugh improv standup parody banter prank satire sitcom punchline roast funny "
        "comedian awkward",
        "Sports": "football match league coach transfer goal season tennis marathon championship athlete "
        "referee basketball training tournament",
        "Health": "sleep nutrition exercise meditation anxiety diet doctor therapy wellbeing heart stress "
        "habit immune recovery mindfulness",
        "True Crime": "murder detective trial evidence suspect investigation verdict police mystery witness "
        "forensic case alibi prison confession",
        "Music": "album guitar concert songwriter jazz orchestra vinyl melody band rhythm festival producer "
        "lyrics studio opera",
        "Food": "recipe kitchen chef bread wine restaurant spice baking cheese pasta harvest flavour coffee "
        "vegetarian streetfood",
        "Politics": "election parliament policy campaign senate minister vote debate diplomacy reform "
        "constitution party governor referendum coalition",
        "Education": "teacher classroom university curriculum student learning exam lecture literacy "
        "homework school degree tutor scholarship pedagogy",
        "Arts": "painting gallery sculpture novel poetry theatre museum cinema design photography exhibition "
        "author illustration architecture dance",
        "Travel": "journey island backpacking flight hotel mountain cityguide passport roadtrip beach "
        "culture train adventure itinerary village",
        "Parenting": "toddler baby family teenager bedtime schoolrun siblings parenting childcare tantrum "
        "pregnancy grandparents playground routine nursery",
        "Gaming": "console speedrun esports level quest multiplayer indie strategy controller bossfight "
        "openworld patch retro stream leaderboard",
    }.items()
}
SHARED_WORDS = ("today", "we", "talk", "about", "the", "story", "of", "and", "why", "it", "matters", "with",
                "our", "guest", "episode", "listeners", "questions", "new", "week", "more")  # fmt: skip
# Show languages (the simulator's locales speak these), weighted like a multilingual directory.
LANGUAGES = (("en", 0.45), ("it", 0.12), ("pt", 0.1), ("es", 0.1), ("de", 0.09), ("fr", 0.08), ("ko", 0.06))
TRANSLATED_SHARE = 0.06  # shows with a translated twin feed
ARRIVING_SHARE = 0.15  # episodes published after the catalog's start…
ARRIVAL_DAYS = 60  # …spread over this many days
HISTORY_DAYS = 730  # the rest were published over the two years before it
FIRST_FEED_ID = 5_000_000
FIRST_EPISODE_ID = 500_000_000


@dataclass(frozen=True)
class SyntheticCatalog:
    """Feeds (PodcastIndex ``/podcasts/trending`` shape) and their items (``/episodes/byfeedid``)."""

    feeds: list[dict[str, Any]]
    items: dict[int, list[dict[str, Any]]]  # feed id → its episodes, oldest first
    topics: dict[int, str]  # feed id → topic

    def snapshot(self, day: date, source: str = "synthetic") -> tuple[list[dict[str, Any]], ParseReport]:
        """The catalog as a directory would list it on ``day``: episodes published by its end."""
        end = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC).timestamp()
        report = ParseReport(feeds=len(self.feeds))
        rows: list[dict[str, Any]] = []
        for feed in self.feeds:
            published = [i for i in self.items[feed["id"]] if i["datePublished"] < end]
            rows.extend(episode_rows(feed, published, day, source, report))
        return rows, report


def _words(rng: np.random.Generator, topic: str, n: int) -> str:
    vocabulary = TOPICS[topic]
    topical = rng.choice(len(vocabulary), size=n)
    shared = rng.choice(len(SHARED_WORDS), size=n // 3)
    words = [vocabulary[i] for i in topical] + [SHARED_WORDS[i] for i in shared]
    return " ".join(words[i] for i in rng.permutation(len(words)))


@lru_cache(maxsize=4)
def synthetic_catalog(episodes: int, shows: int, seed: int, start: date) -> SyntheticCatalog:
    """``episodes`` episodes over ``shows`` shows (translated twins included), around ``start``."""
    if shows < 1 or episodes < shows:
        raise ValueError(f"need at least one episode per show, got {episodes} episodes for {shows} shows")
    rng = np.random.default_rng(seed)
    topic_names = list(TOPICS)
    # Topic popularity is skewed: a few topics host most shows.
    topic_weights = rng.dirichlet(np.full(len(topic_names), 0.8))
    languages, language_weights = zip(*LANGUAGES, strict=True)
    twins = int(shows * TRANSLATED_SHARE)
    originals = shows - twins
    # Heavy-tailed show sizes that sum to the episodes the originals and their twins publish.
    sizes = rng.pareto(1.3, size=originals) + 1.0
    twin_of = rng.choice(originals, size=twins, replace=False) if twins else np.empty(0, dtype=int)
    weight = sizes.copy()
    np.add.at(weight, twin_of, sizes[twin_of])  # a twin publishes as many episodes as its original
    counts = np.maximum(1, np.floor(sizes * episodes / weight.sum())).astype(int)
    # Rounding leaves the total a little off: the biggest show without a twin absorbs the difference.
    solo = np.setdiff1d(np.arange(originals), twin_of)
    biggest = solo[np.argmax(sizes[solo])] if len(solo) else int(np.argmax(sizes))
    counts[biggest] = max(1, counts[biggest] + episodes - int(counts.sum() + counts[twin_of].sum()))
    start_ts = datetime.combine(start, time(), tzinfo=UTC).timestamp()
    feeds: list[dict[str, Any]] = []
    items: dict[int, list[dict[str, Any]]] = {}
    topics: dict[int, str] = {}
    next_episode = FIRST_EPISODE_ID

    def add_feed(feed_id: int, topic: str, language: str, n: int, plan: np.ndarray, durations: np.ndarray,
                 title: str, twin: bool) -> None:  # fmt: skip
        nonlocal next_episode
        feed_rng = np.random.default_rng([seed, feed_id])
        feeds.append({
            "id": feed_id, "title": title, "language": language, "podcastGuid": f"guid-{seed}-{feed_id}",
            "categories": {"1": topic}, "trendScore": float(np.round(rng.lognormal(0.0, 1.0), 3)),
        })  # fmt: skip
        topics[feed_id] = topic
        episodes_of_feed = []
        for number in range(n):
            published = plan[number] + (feed_rng.uniform(600, 6 * 3600) if twin else 0.0)
            duration = durations[number] * (feed_rng.uniform(0.95, 1.05) if twin else 1.0)
            episodes_of_feed.append({
                "id": next_episode, "feedId": feed_id, "title": f"{title} #{number + 1}: "
                + _words(feed_rng, topic, 4).title(), "description": _words(feed_rng, topic, 45),
                "datePublished": int(published), "duration": int(duration), "episode": number + 1,
                "season": 1, "guid": f"ep-{seed}-{next_episode}", "feedLanguage": language,
            })  # fmt: skip
            next_episode += 1
        items[feed_id] = episodes_of_feed

    for show in range(originals):
        topic = topic_names[rng.choice(len(topic_names), p=topic_weights)]
        language = languages[rng.choice(len(languages), p=language_weights)]
        n = int(counts[show])
        # Most of a show's back catalogue is history; the newest share arrives over the coming days.
        arriving = rng.random(n) < ARRIVING_SHARE
        offsets = np.where(
            arriving, rng.uniform(0, ARRIVAL_DAYS, n), -rng.uniform(0, HISTORY_DAYS, n)
        ) * 86_400  # fmt: skip
        plan = np.sort(start_ts + offsets)
        durations = np.clip(rng.lognormal(np.log(2400), 0.5, n), 300, 4 * 3600)
        title = f"The {_words(rng, topic, 2).title()} {rng.choice(['Show', 'Hour', 'Podcast', 'Talk'])}"
        add_feed(FIRST_FEED_ID + show, topic, language, n, plan, durations, title, twin=False)
        for twin_index in np.flatnonzero(twin_of == show):
            other = [lang for lang in languages if lang != language]
            add_feed(FIRST_FEED_ID + originals + int(twin_index), topic, other[twin_index % len(other)], n,
                     plan, durations, f"{title} ({other[twin_index % len(other)]})", twin=True)  # fmt: skip
    return SyntheticCatalog(feeds=feeds, items=items, topics=topics)
