"""The per-request list rules on plain dicts."""

import re

import pytest

from api.lists import LOCALE_PATTERN, choose_variant, localise, request_language
from podrec.ids import API_ID_PATTERN as ID_PATTERN

VARIANTS = [
    {"episode_id": "a-en", "language": "en", "plays": 3},
    {"episode_id": "a-it", "language": "it", "plays": 1},
    {"episode_id": "a-fr", "language": "fr", "plays": 9},
]


def test_language_of_locales() -> None:
    assert [request_language(x, "en") for x in ("pt-BR", "IT", "en_GB", "es-419", None)] == [
        "pt", "it", "en", "es", "en",
    ]  # fmt: skip
    # a stored locale outside the request pattern is read as the batch side read it, not refused
    assert request_language("en-US-x-private", "de") == "en"


def test_variant_rule_language_then_fallback_then_most_played() -> None:
    assert choose_variant(VARIANTS, "it", "en")["episode_id"] == "a-it"
    assert choose_variant(VARIANTS, "de", "en")["episode_id"] == "a-en"
    assert choose_variant(VARIANTS[1:], "de", "en")["episode_id"] == "a-fr"  # most played
    assert choose_variant([], "de", "en") is None


def test_localise_keeps_one_per_canonical_renumbers_and_cuts_at_k() -> None:
    items = [
        {"rank": 1, "episode_id": "a-en", "canonical_episode_id": "a", "variants": VARIANTS},
        {"rank": 2, "episode_id": "a-fr", "canonical_episode_id": "a", "variants": VARIANTS},  # dropped
        {"rank": 3, "episode_id": "b", "canonical_episode_id": "b"},  # no variants on record: kept as is
        {"rank": 4, "episode_id": "c", "canonical_episode_id": "c"},
    ]
    out = localise(items, "it", "en", k=2)
    assert [(i["rank"], i["episode_id"]) for i in out] == [(1, "a-it"), (2, "b")]
    assert "variants" not in out[0]
    without_a = localise(items, "it", "en", k=10, exclude_canonical="a")
    assert [i["episode_id"] for i in without_a] == ["b", "c"]


@pytest.mark.parametrize("value", ['{"$gt": ""}', "$where", "", "a/b", "x" * 129, "-leading", "a b"])
def test_ids_that_could_reach_a_query_as_operators_do_not_match(value: str) -> None:
    assert not re.match(ID_PATTERN, value)


def test_real_ids_and_locales_match() -> None:
    assert all(re.match(ID_PATTERN, v) for v in ("user-42-000305", "70000001", "u1@x.org", "ml:123"))
    assert all(re.match(LOCALE_PATTERN, v) for v in ("en", "pt-BR", "es-419", "zh-Hant", "en_GB"))
    assert not any(re.match(LOCALE_PATTERN, v) for v in ("english", "en-", "e", "en-US-x"))
