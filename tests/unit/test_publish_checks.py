"""The gate's list checks, made on each list on its way to the store, on hand-built lists."""

from podrec.serving.publish import ListChecks


def a_list(user: str, canonicals: list[str], fallback: bool = False) -> dict:
    items = [{"rank": r + 1, "canonical_episode_id": c} for r, c in enumerate(canonicals)]
    return {"_id": user, "fallback": fallback, "items": items}


def test_every_list_passes_through_unchanged_and_sound_lists_pass() -> None:
    lists = [a_list("u1", ["a", "b"]), a_list("__popular__/en", ["c"], fallback=True)]
    checks = ListChecks(k=2)
    assert list(checks.observe(lists)) == lists
    assert (checks.within_k, checks.well_formed, checks.popular) == (True, True, True)


def test_one_bad_list_fails_its_check_for_the_version() -> None:
    too_long = ListChecks(k=2)
    list(too_long.observe([a_list("u1", ["a", "b", "c"]), a_list("u2", ["a"])]))
    assert not too_long.within_k and too_long.well_formed

    empty = ListChecks(k=2)
    list(empty.observe([a_list("u1", [])]))
    assert not empty.within_k

    twice = ListChecks(k=10)
    list(twice.observe([a_list("u1", ["a", "b"]), a_list("u2", ["a", "b", "a"])]))
    assert twice.within_k and not twice.well_formed

    gap = ListChecks(k=10)
    skipped = a_list("u1", ["a", "b"])
    skipped["items"][1]["rank"] = 3
    list(gap.observe([skipped]))
    assert not gap.well_formed


def test_without_a_fallback_list_there_is_no_popular_list() -> None:
    checks = ListChecks(k=10)
    list(checks.observe([a_list("u1", ["a"]), {**a_list("u2", ["b"]), "fallback": None}]))
    assert not checks.popular
