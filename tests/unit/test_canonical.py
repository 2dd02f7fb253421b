from collections import defaultdict
from datetime import UTC, datetime, timedelta

from podrec.content.canonical import EpisodeKey, canonical_ids
from podrec.content.podcastindex import sample_catalog_rows

T0 = datetime(2026, 11, 1, 8, tzinfo=UTC)


def ep(
    eid: str, feed: str, lang: str, n: int | None, hours: float = 0, duration: int | None = 1800
) -> EpisodeKey:
    return EpisodeKey(eid, feed, lang, n, 1, T0 + timedelta(hours=hours), duration)


def parallel_show(feed: str, lang: str, prefix: str, count: int = 4, shift: float = 1) -> list[EpisodeKey]:
    return [ep(f"{prefix}{i}", feed, lang, i, hours=24 * 7 * i + shift) for i in range(1, count + 1)]


def test_a_translated_show_merges_episode_by_episode() -> None:
    original = parallel_show("f-en", "en", "a", shift=0)
    italian = parallel_show("f-it", "it", "b", shift=2)
    ids = canonical_ids(original + italian)
    assert ids == {**{f"a{i}": f"a{i}" for i in range(1, 5)}, **{f"b{i}": f"a{i}" for i in range(1, 5)}}


def test_two_coincidences_between_unrelated_shows_do_not_merge() -> None:
    # Two shows in different languages both air episodes 1 and 2 on the same days.
    show_a = parallel_show("f-1", "en", "a", count=2)
    show_b = parallel_show("f-2", "de", "b", count=2)
    assert all(k == v for k, v in canonical_ids(show_a + show_b).items())


def test_each_condition_is_required() -> None:
    base = parallel_show("f-en", "en", "a")
    variants = {
        "same language": parallel_show("f-x", "en", "b"),
        "same feed": [ep(f"b{i}", "f-en", "it", i, hours=24 * 7 * i) for i in range(1, 5)],
        "unknown language": parallel_show("f-x", "und", "b"),
        "published days apart": parallel_show("f-x", "it", "b", shift=72),
        "durations differ": [
            ep(f"b{i}", "f-x", "it", i, hours=24 * 7 * i, duration=2400) for i in range(1, 5)
        ],
        "no episode numbers": [ep(f"b{i}", "f-x", "it", None, hours=24 * 7 * i) for i in range(1, 5)],
    }
    for why, other in variants.items():
        ids = canonical_ids(base + other)
        assert all(k == v for k, v in ids.items()), why


def test_a_group_with_two_episodes_of_one_feed_is_dissolved() -> None:
    english = parallel_show("f-en", "en", "a")
    italian = parallel_show("f-it", "it", "b")
    # A re-upload in the Italian feed with the same number and date as episode 1.
    reupload = ep("b1-bis", "f-it", "it", 1, hours=24 * 7 + 1)
    ids = canonical_ids([*english, *italian, reupload])
    assert ids["a1"] == "a1" and ids["b1"] == "b1" and ids["b1-bis"] == "b1-bis"
    assert ids["b2"] == "a2"  # the rest of the shows still pair up


def test_sample_catalog_groups_exactly_its_translated_shows() -> None:
    rows = sample_catalog_rows()
    keys = [
        EpisodeKey(r["episode_id"], r["feed_id"], r["language"], r["episode_number"], r["season"],
                   r["published_at"], r["duration_s"])
        for r in rows
    ]  # fmt: skip
    ids = canonical_ids(keys)
    feed_of = {r["episode_id"]: r["feed_id"] for r in rows}
    groups: dict[str, set[str]] = defaultdict(set)
    for eid, canonical in ids.items():
        groups[canonical].add(eid)
    merged = [g for g in groups.values() if len(g) > 1]
    feed_pairs = {tuple(sorted(feed_of[e] for e in g)) for g in merged}
    # Deep Tech Weekly ↔ its Italian edition; Historia Viva ↔ Living History. Nothing else,
    # in particular not the two "Listener Q&A" episodes of Startup Stories.
    assert feed_pairs == {("920001", "920002"), ("920005", "920006")}
    assert all(len(g) == 2 for g in merged)
    assert len(merged) == 10 + 8
