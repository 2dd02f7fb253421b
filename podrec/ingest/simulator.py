"""Simulated listeners: realistic, seeded user events in the wire format.

What makes the simulation worth learning from:
- activity and popularity are heavy-tailed (a few users and episodes dominate);
- every user has a locale and a taste over topics, and taste drives both what they pick
  and how far they listen, so content and collaborative signals both carry information;
- sessions play episodes with progress, pauses, early skips, completions and likes;
- users keep arriving: some are new each day;
- listeners react to the lists they are served (``react``): they look down a list with a position
  bias, play what fits their hidden taste, and a share of them (``novelty_lovers``) are drawn to new
  episodes of their favourite topics — so a policy that can place new episodes has something to win.
  Every event of a play that followed a list carries the list's ``impression_id``.

Day ``d`` is generated from ``(seed, d)`` alone, so re-running a day yields the same
events (and event ids), and a range can be produced one day at a time.

It runs at the scale podrec is built for (10⁵ to 10⁶ listeners, 10⁴ to 10⁵ episodes): a listener's
taste is over topics, so what they pick is drawn in two vectorised steps — a (topic, language)
cell weighted by taste, language fit and the cell's popularity, then an episode of the cell by
popularity — and only the plays themselves are generated one by one.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np

from podrec.language import language_of
from podrec.recsys.engagement import COMPLETED_AT

LOCALES = (
    ("en-US", 0.34), ("en-GB", 0.08), ("it-IT", 0.14), ("pt-BR", 0.11), ("es-ES", 0.10),
    ("de-DE", 0.09), ("fr-FR", 0.08), ("ko-KR", 0.06),
)  # fmt: skip
DEVICES = (("android", 0.45), ("ios", 0.35), ("web", 0.12), ("smart_speaker", 0.08))
DEFAULT_DURATION_S = 1800
# Minutes after midnight UTC where sessions cluster: commute, lunch, evening.
SESSION_PEAKS = ((7 * 60 + 30, 50), (12 * 60 + 30, 40), (20 * 60, 90))


@dataclass(frozen=True)
class Episode:
    episode_id: str
    language: str
    topic: str
    duration_s: int
    published_at: datetime
    popularity: float


@dataclass(frozen=True)
class User:
    user_id: str
    locale: str
    language: str
    seed: int
    activity: float  # mean sessions per active day
    first_day: date  # the day they start listening
    device: str


def taste_matrix(seed: int, n_users: int, topics: Sequence[str]) -> np.ndarray:
    """How much each listener cares for each topic (mean 1), shape (users, topics). Drawn per topic
    for the whole population, so a topic that appears later does not reshuffle anyone's existing
    tastes, and listener ``i`` keeps theirs when the population grows. Gamma(0.3) makes a few
    favourite topics dominate each listener's taste."""
    columns = [
        np.random.default_rng([seed, int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "big")]).gamma(
            0.3, 1.0, size=n_users
        )
        / 0.3
        for t in topics
    ]
    return np.stack(columns, axis=1) if columns else np.zeros((n_users, 0))


def _choice(rng: random.Random, weighted: Sequence[tuple[str, float]]) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def episodes_from_catalog(rows: Sequence[dict[str, Any]], seed: int) -> list[Episode]:
    """Catalog rows (``bronze.episodes`` shape) with a heavy-tailed popularity each.

    Popularity is drawn per episode id, so a larger catalog leaves existing episodes as they were.
    """
    out = []
    for row in sorted(rows, key=lambda r: r["episode_id"]):
        rng = random.Random(f"{seed}:popularity:{row['episode_id']}")
        trend = float(row.get("trend_score") or 1.0)
        categories = row.get("categories") or ["General"]
        out.append(
            Episode(
                episode_id=row["episode_id"],
                language=row.get("language") or "und",
                topic=sorted(categories)[0],
                duration_s=int(row.get("duration_s") or DEFAULT_DURATION_S),
                published_at=row["published_at"],
                popularity=trend**1.5 * rng.lognormvariate(0, 1.0),
            )
        )
    return out


def make_users(n: int, seed: int, epoch: date) -> list[User]:
    """``n`` listeners; 70% are there from ``epoch``, the rest arrive over the next 60 days."""
    rng = random.Random(f"{seed}:users")
    users = []
    for i in range(n):
        locale = _choice(rng, LOCALES)
        users.append(
            User(
                user_id=f"user-{seed}-{i:06d}",
                locale=locale,
                language=language_of(locale),
                seed=seed,
                # Heavy tail: most listen now and then, a few every day, a lot.
                activity=min(6.0, rng.paretovariate(1.6) * 0.35),
                first_day=epoch + timedelta(days=0 if rng.random() < 0.7 else rng.randrange(1, 60)),
                device=_choice(rng, DEVICES),
            )
        )
    return users


def _language_fit(user_language: str, episode_language: str) -> float:
    if episode_language == user_language:
        return 1.0
    if episode_language in ("en", "und"):
        return 0.1  # many listeners also take English or unlabelled shows
    return 0.01


def _session_start(rng: random.Random, day: date) -> datetime:
    peak, spread = SESSION_PEAKS[rng.choices(range(3), (0.3, 0.2, 0.5))[0]]
    minute = int(min(24 * 60 - 1, max(0, rng.gauss(peak, spread))))
    return datetime.combine(day, time(), tzinfo=UTC) + timedelta(minutes=minute, seconds=rng.randrange(60))


def _listen(
    rng: random.Random, user: User, episode: Episode, taste: float, session_id: str, start: datetime
) -> tuple[list[dict[str, Any]], datetime]:
    """The events of one play of ``episode``; returns them and when the listener stopped."""
    affinity = min(1.0, taste / 3)
    duration = episode.duration_s
    base = {
        "user_id": user.user_id, "episode_id": episode.episode_id, "session_id": session_id,
        "locale": user.locale, "device": user.device, "episode_duration_s": duration,
    }  # fmt: skip
    events: list[dict[str, Any]] = []

    def emit(event_type: str, at: datetime, position: float) -> None:
        events.append(
            {**base, "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
             "event_type": event_type, "position_s": round(position, 1), "occurred_at": at}
        )  # fmt: skip

    emit("play", start, 0.0)
    if rng.random() < 0.45 * (1 - affinity) + 0.03:
        # Early skip: gone within the first few percent of the episode.
        stop = duration * rng.uniform(0.005, 0.045)
        end = start + timedelta(seconds=stop)
        emit("skip", end, stop)
        return events, end
    completion = min(1.0, rng.betavariate(1 + 6 * affinity, 2.2 - 1.2 * affinity) * 1.08)
    stop = duration * completion
    clock, position, next_mark = start, 0.0, 0.25
    paused = rng.random() < 0.3
    while next_mark <= completion + 1e-9 and next_mark < 1.0:
        mark = duration * next_mark
        clock += timedelta(seconds=mark - position)
        position = mark
        emit("progress", clock, position)
        if paused and next_mark == 0.5:
            emit("pause", clock, position)
            clock += timedelta(seconds=rng.randint(30, 900))
            emit("play", clock, position)
        next_mark += 0.25
    clock += timedelta(seconds=stop - position)
    if completion >= COMPLETED_AT:
        emit("complete", clock, duration)
    else:
        emit("skip", clock, stop)
    if completion > 0.7 and rng.random() < 0.5 * affinity + 0.05:
        clock += timedelta(seconds=rng.randint(1, 20))
        emit("like", clock, min(stop, duration))
        if rng.random() < 0.03:
            emit("unlike", clock + timedelta(seconds=rng.randint(5, 600)), min(stop, duration))
    return events, clock


# Reactions to a served list (``react``).
# Chance that rank r is looked at: 1 / r^POSITION_BIAS (rank 1 always, rank 10 about one in six).
POSITION_BIAS = 0.8
NOVELTY_SHARE = 0.3  # listeners who like new episodes of their topics
NOVELTY_BOOST = 4.0  # how much more such a listener plays a new episode of a topic they like
NEW_EPISODE_DAYS = 7
MAX_LIST_PLAYS = 3  # plays one listener takes from one list


@dataclass(frozen=True)
class Served:
    """A list a listener was served: its impression, when, and its episode ids by rank."""

    impression_id: str
    served_at: datetime
    episode_ids: list[str]


OPEN_SHARE = 0.8  # listeners active on a day who open their list first


def list_openings(day: date, organic: Sequence[dict[str, Any]], seed: int) -> dict[str, datetime]:
    """Who opens their list on ``day`` and when: most listeners active that day, a minute or two before
    their first organic event."""
    first: dict[str, datetime] = {}
    for event in organic:
        first.setdefault(event["user_id"], event["occurred_at"])
    rng = random.Random(f"{seed}:open:{day.isoformat()}")
    return {
        user_id: at - timedelta(seconds=rng.randint(30, 180))
        for user_id, at in sorted(first.items())
        if rng.random() < OPEN_SHARE
    }


def novelty_lovers(seed: int, n_users: int) -> np.ndarray:
    """Which listeners like new episodes of their topics: a hidden trait, fixed per (seed, listener)."""
    return np.random.default_rng([seed, 7_771]).random(n_users) < NOVELTY_SHARE


def play_probability(taste: float, fit: float, new_and_loved: bool) -> float:
    """Chance that a listener who looked at an item plays it: their taste for its topic and its language,
    boosted for a novelty lover's new episode of a topic they like."""
    base = 0.04 + 0.3 * min(1.0, taste / 3) * fit
    return min(0.9, base * (NOVELTY_BOOST if new_and_loved else 1.0))


def react(
    day: date,
    users: Sequence[User],
    episodes: Sequence[Episode],
    seed: int,
    taste: np.ndarray,
    served: dict[str, Served],
) -> list[dict[str, Any]]:
    """The plays listeners take from the lists they were served on ``day``, in time order; every
    event carries the impression's id. Deterministic in (seed, day, what was served)."""
    topics = {t: i for i, t in enumerate(sorted({e.topic for e in episodes}))}
    by_id = {e.episode_id: e for e in episodes}
    index = {u.user_id: i for i, u in enumerate(users)}
    lovers = novelty_lovers(seed, len(users))
    rng = random.Random(f"{seed}:react:{day.isoformat()}")
    events: list[dict[str, Any]] = []
    for user_id in sorted(served):
        u, shown = index[user_id], served[user_id]
        user = users[u]
        clock = shown.served_at + timedelta(seconds=rng.randint(5, 90))
        session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        plays = 0
        for rank, episode_id in enumerate(shown.episode_ids, start=1):
            episode = by_id.get(episode_id)
            if episode is None or plays == MAX_LIST_PLAYS or rng.random() >= rank**-POSITION_BIAS:
                continue
            liked = float(taste[u, topics[episode.topic]])
            new = shown.served_at - episode.published_at < timedelta(days=NEW_EPISODE_DAYS)
            chance = play_probability(liked, _language_fit(user.language, episode.language),
                                      bool(lovers[u]) and new and liked >= 1.0)  # fmt: skip
            if rng.random() >= chance:
                continue
            played, clock = _listen(rng, user, episode, liked, session_id, clock)
            events.extend({**event, "impression_id": shown.impression_id} for event in played)
            clock += timedelta(seconds=rng.randint(5, 120))
            plays += 1
    events.sort(key=lambda e: (e["occurred_at"], e["event_id"]))
    return events


@dataclass(frozen=True)
class Cells:
    """The day's available episodes grouped by (topic, language): what a listener's pick is drawn over."""

    topic: np.ndarray  # (cells,) topic index of each cell
    language: list[str]  # each cell's language
    popularity: np.ndarray  # (cells,) summed popularity
    members: list[np.ndarray]  # each cell's episodes (indices into the available list)
    cumulative: list[np.ndarray]  # their cumulative popularity, to draw one

    @classmethod
    def of(cls, available: Sequence[Episode], topics: dict[str, int]) -> Cells:
        keys: dict[tuple[int, str], list[int]] = {}
        for i, episode in enumerate(available):
            keys.setdefault((topics[episode.topic], episode.language), []).append(i)
        members = [np.array(v) for v in keys.values()]
        pops = [np.cumsum([available[i].popularity for i in m]) for m in members]
        return cls(
            topic=np.array([t for t, _ in keys]), language=[lang for _, lang in keys],
            popularity=np.array([c[-1] for c in pops]), members=members, cumulative=pops,
        )  # fmt: skip


BLOCK_USERS = 4096


def simulate_day(
    day: date,
    users: Sequence[User],
    episodes: Sequence[Episode],
    seed: int,
    taste: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """All events of ``day`` in time order; deterministic in (seed, day).

    ``taste`` is ``taste_matrix(seed, len(users), topics)`` over the episodes' sorted topics; it is
    computed here when not given (callers simulating many days pass it once).
    """
    day_end = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
    available = [e for e in episodes if e.published_at < day_end]
    if not available:
        return []
    topic_names = sorted({e.topic for e in episodes})
    topics = {t: i for i, t in enumerate(topic_names)}
    taste = taste if taste is not None else taste_matrix(seed, len(users), topic_names)
    cells = Cells.of(available, topics)
    languages = sorted({u.language for u in users})
    fit = np.array([[_language_fit(u, c) for c in cells.language] for u in languages])
    user_language = np.array([languages.index(u.language) for u in users]) if users else np.empty(0, int)
    rng = np.random.default_rng([seed, day.toordinal()])
    plays_rng = random.Random(f"{seed}:{day.isoformat()}")
    activity = np.array([u.activity if u.first_day <= day else 0.0 for u in users])
    sessions = rng.poisson(activity)
    events: list[dict[str, Any]] = []
    for start in range(0, len(users), BLOCK_USERS):
        block = np.arange(start, min(start + BLOCK_USERS, len(users)))
        block = block[sessions[block] > 0]
        if len(block) == 0:
            continue
        # Each listener's weight on each cell; plays draw a cell, then an episode of it by popularity.
        weights = (taste[block][:, cells.topic] + 0.03) ** 2 * fit[user_language[block]] * cells.popularity
        cumulative = np.cumsum(weights, axis=1)
        plays_per_session = [rng.integers(1, 4, size=sessions[u]) for u in block]
        owner = np.repeat(np.arange(len(block)), [int(p.sum()) for p in plays_per_session])
        draws = rng.random(len(owner)) * cumulative[owner, -1]
        chosen_cells = (cumulative[owner] < draws[:, None]).sum(axis=1)
        within = rng.random(len(owner))
        play = 0
        for row, u in enumerate(block):
            user = users[u]
            for count in plays_per_session[row]:
                session_id = str(uuid.UUID(int=plays_rng.getrandbits(128), version=4))
                clock = _session_start(plays_rng, day)
                for _ in range(count):
                    cell = chosen_cells[play]
                    target = within[play] * cells.popularity[cell]
                    pick = np.searchsorted(cells.cumulative[cell], target, "right")
                    episode = available[cells.members[cell][min(pick, len(cells.members[cell]) - 1)]]
                    played, clock = _listen(
                        plays_rng, user, episode, float(taste[u, topics[episode.topic]]), session_id, clock
                    )
                    events.extend(played)
                    clock += timedelta(seconds=plays_rng.randint(5, 120))
                    play += 1
    events.sort(key=lambda e: (e["occurred_at"], e["event_id"]))
    return events


def simulate(
    catalog: Sequence[dict[str, Any]],
    days: Sequence[date],
    n_users: int,
    epoch: date,
    seed: int = 42,
    n_episodes: int | None = None,
) -> Iterator[tuple[date, list[dict[str, Any]]]]:
    """Events for each of ``days``, one day at a time.

    The population depends only on (seed, n_users, epoch), so a day gives the same events
    whether it is simulated alone or inside a range.
    """
    if any(day < epoch for day in days):
        raise ValueError(f"cannot simulate before the population epoch {epoch} (PODREC_PARTITIONS_START)")
    episodes = episodes_from_catalog(catalog, seed)
    if n_episodes is not None:
        episodes = sorted(episodes, key=lambda e: -e.popularity)[:n_episodes]
    users = make_users(n_users, seed, epoch)
    taste = taste_matrix(seed, len(users), sorted({e.topic for e in episodes}))
    for day in days:
        yield day, simulate_day(day, users, episodes, seed, taste)


def event_type_counts(events: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many events of each type: the mix a simulated day produced."""
    counts: dict[str, int] = {}
    for event in events:
        counts[event["event_type"]] = counts.get(event["event_type"], 0) + 1
    return counts
