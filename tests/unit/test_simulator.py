from collections import Counter
from datetime import date, timedelta

from podrec.content.podcastindex import sample_snapshot
from podrec.ingest.events import validate
from podrec.ingest.simulator import simulate

DAYS = [date(2026, 11, 10) + timedelta(days=i) for i in range(5)]
EPOCH = date(2026, 11, 1)


def run(users: int = 400, seed: int = 5, days=DAYS):
    catalog, _ = sample_snapshot(days[-1])
    return dict(simulate(catalog, days, users, epoch=EPOCH, seed=seed)), {r["episode_id"]: r for r in catalog}


def test_same_seed_same_events_whether_alone_or_in_a_range() -> None:
    ranged, _ = run()
    alone, _ = run(days=[DAYS[2]])
    assert alone[DAYS[2]] == ranged[DAYS[2]]
    other, _ = run(seed=6)
    assert other[DAYS[2]] != ranged[DAYS[2]]


def test_events_are_valid_wire_format_and_ordered_within_a_play() -> None:
    from podrec.ingest.events import encode

    by_day, _ = run(users=100)
    events = [e for evs in by_day.values() for e in evs]
    assert len({e["event_id"] for e in events}) == len(events)
    for e in events[:2000]:
        assert validate(encode(e), e["occurred_at"]).error is None
    types = Counter(e["event_type"] for e in events)
    assert {"play", "progress", "pause", "complete", "skip", "like"} <= set(types)


def test_heavy_tails_and_new_users() -> None:
    by_day, _ = run(users=1500)
    events = [e for evs in by_day.values() for e in evs]
    per_user = sorted(Counter(e["user_id"] for e in events).values(), reverse=True)
    per_episode = sorted(
        Counter(e["episode_id"] for e in events if e["event_type"] == "play").values(), reverse=True
    )
    # The top 10% of users and of episodes account for far more than 10% of activity.
    assert sum(per_user[: len(per_user) // 10]) > 0.3 * sum(per_user)
    assert sum(per_episode[: len(per_episode) // 10]) > 0.3 * sum(per_episode)
    seen: set[str] = set()
    new_per_day = []
    for day in DAYS:
        users = {e["user_id"] for e in by_day[day]}
        new_per_day.append(len(users - seen))
        seen |= users
    assert all(n > 0 for n in new_per_day[1:])


def test_taste_and_language_shape_what_is_played() -> None:
    by_day, catalog = run(users=1500)
    plays = [e for evs in by_day.values() for e in evs if e["event_type"] == "play" and e["position_s"] == 0]
    labelled = [e for e in plays if catalog[e["episode_id"]]["language"] != "und"]
    same_language = sum(catalog[e["episode_id"]]["language"] == e["locale"][:2] for e in labelled)
    # Listeners mostly pick their own language, though English reaches everyone a little.
    assert same_language / len(labelled) > 0.5
    # Early skips concentrate on topics the listener cares little for: users skip some topics
    # far more than others, which is the signal the recommenders learn from.
    skips = Counter()
    totals = Counter()
    for evs in by_day.values():
        for e in evs:
            key = (e["user_id"], catalog[e["episode_id"]]["categories"][0])
            if e["event_type"] == "play" and e["position_s"] == 0:
                totals[key] += 1
            if e["event_type"] == "skip" and e["position_s"] < 0.05 * e["episode_duration_s"]:
                skips[key] += 1
    rates = [skips[k] / totals[k] for k in totals if totals[k] >= 3]
    assert min(rates) < 0.1 < 0.4 < max(rates)
