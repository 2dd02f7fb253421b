"""Simulated listeners: realistic, seeded user events in the wire format.

What makes the simulation worth learning from:
- activity and popularity are heavy-tailed (a few users and episodes dominate);
- every user has a locale and a taste over topics, and taste drives both what they pick
  and how far they listen, so content and collaborative signals both carry information;
- sessions play episodes with progress, pauses, early skips, completions and likes;
- users keep arriving: some are new each day.

Day ``d`` is generated from ``(seed, d)`` alone, so re-running a day yields the same
events (and event ids), and a range can be produced one day at a time.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

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


@lru_cache(maxsize=1 << 16)
def taste(seed: int, user_id: str, topic: str) -> float:
    """How much a user cares for a topic (mean 1). Drawn per (user, topic), so a topic that
    appears later does not reshuffle anyone's existing tastes. Gamma(0.3) makes a few
    favourite topics dominate each listener's taste."""
    return random.Random(f"{seed}:{user_id}:{topic}").gammavariate(0.3, 1.0) / 0.3


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


def _language_fit(user: User, episode: Episode) -> float:
    if episode.language == user.language:
        return 1.0
    if episode.language == "en" or episode.language == "und":
        return 0.1  # many listeners also take English or unlabelled shows
    return 0.01


def _session_start(rng: random.Random, day: date) -> datetime:
    peak, spread = SESSION_PEAKS[rng.choices(range(3), (0.3, 0.2, 0.5))[0]]
    minute = int(min(24 * 60 - 1, max(0, rng.gauss(peak, spread))))
    return datetime.combine(day, time(), tzinfo=UTC) + timedelta(minutes=minute, seconds=rng.randrange(60))


def _listen(
    rng: random.Random, user: User, episode: Episode, session_id: str, start: datetime
) -> tuple[list[dict[str, Any]], datetime]:
    """The events of one play of ``episode``; returns them and when the listener stopped."""
    affinity = min(1.0, taste(user.seed, user.user_id, episode.topic) / 3)
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


def simulate_day(
    day: date,
    users: Sequence[User],
    episodes: Sequence[Episode],
    seed: int,
) -> list[dict[str, Any]]:
    """All events of ``day`` in time order; deterministic in (seed, day)."""
    rng = random.Random(f"{seed}:{day.isoformat()}")
    day_end = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
    available = [e for e in episodes if e.published_at < day_end]
    if not available:
        return []
    events: list[dict[str, Any]] = []
    for user in users:
        if user.first_day > day:
            continue
        # Poisson number of sessions with the user's mean.
        sessions = _poisson(rng, user.activity)
        if sessions == 0:
            continue
        weights = [
            e.popularity * (taste(user.seed, user.user_id, e.topic) + 0.03) ** 2 * _language_fit(user, e)
            for e in available
        ]
        for _ in range(sessions):
            session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            clock = _session_start(rng, day)
            for episode in rng.choices(available, weights, k=rng.randint(1, 3)):
                played, clock = _listen(rng, user, episode, session_id, clock)
                events.extend(played)
                clock += timedelta(seconds=rng.randint(5, 120))
    events.sort(key=lambda e: (e["occurred_at"], e["event_id"]))
    return events


def _poisson(rng: random.Random, mean: float) -> int:
    threshold, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


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
    for day in days:
        yield day, simulate_day(day, users, episodes, seed)


def event_type_counts(events: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many events of each type: the mix a simulated day produced."""
    counts: dict[str, int] = {}
    for event in events:
        counts[event["event_type"]] = counts.get(event["event_type"], 0) + 1
    return counts
