"""The API's document cache on its own (byte budget, least-recently-used order, misses remembered) and
how the API uses it (answers from memory on the event loop, the rest in a thread)."""

import asyncio
import threading
from collections.abc import Callable

from api.serving import memory_first
from api.store import ENTRY_OVERHEAD, DocumentCache, NotInMemory

V = "v20261120T000000Z-1"


def test_a_document_is_kept_by_version_kind_and_id() -> None:
    cache = DocumentCache(max_bytes=10_000)
    cache.put((V, "recommendations", "u1"), b"list of u1")
    assert cache.get((V, "recommendations", "u1")) == (True, b"list of u1")
    assert cache.get(("v20261121T000000Z-2", "recommendations", "u1")) == (False, None)
    assert cache.get((V, "similar", "u1")) == (False, None)


def test_a_miss_is_remembered_as_none_and_costs_its_overhead() -> None:
    cache = DocumentCache(max_bytes=10_000)
    cache.put((V, "recommendations", "nobody"), None)
    assert cache.get((V, "recommendations", "nobody")) == (True, None)
    assert cache.size_bytes == ENTRY_OVERHEAD


def test_the_least_recently_used_go_first_and_the_budget_holds() -> None:
    # each entry costs 100 + 256 = 356 bytes: three fit in 1,100, a fourth evicts the oldest unused
    cache = DocumentCache(max_bytes=1_100)
    for name in ("a", "b", "c"):
        cache.put((V, "recommendations", name), name.encode() * 100)
    cache.get((V, "recommendations", "a"))  # a is now the most recent; b the least
    cache.put((V, "recommendations", "d"), b"d" * 100)
    assert [cache.get((V, "recommendations", n))[0] for n in "abcd"] == [True, False, True, True]
    assert len(cache) == 3 and cache.size_bytes == 3 * 356 <= cache.max_bytes


def test_replacing_an_entry_counts_it_once() -> None:
    cache = DocumentCache(max_bytes=10_000)
    cache.put((V, "recommendations", "u1"), b"x" * 50)
    cache.put((V, "recommendations", "u1"), b"x" * 80)
    assert len(cache) == 1 and cache.size_bytes == ENTRY_OVERHEAD + 80


def test_a_document_larger_than_the_budget_is_not_kept_and_zero_turns_the_cache_off() -> None:
    small = DocumentCache(max_bytes=1_000)
    small.put((V, "recommendations", "big"), b"x" * 2_000)
    assert small.get((V, "recommendations", "big")) == (False, None) and small.size_bytes == 0
    off = DocumentCache(max_bytes=0)
    off.put((V, "recommendations", "u1"), None)
    assert len(off) == 0


def test_clear_empties_it() -> None:
    cache = DocumentCache(max_bytes=10_000)
    cache.put((V, "recommendations", "u1"), b"x")
    cache.clear()
    assert len(cache) == 0 and cache.size_bytes == 0


def test_memory_first_answers_on_the_loop_and_moves_to_a_thread_only_for_mongodb() -> None:
    loop_thread = threading.get_ident()
    calls: list[tuple[bool, bool]] = []  # (memory_only, on the loop's thread)

    def answer(in_memory: bool) -> Callable[[bool], str]:
        def run(memory_only: bool) -> str:
            calls.append((memory_only, threading.get_ident() == loop_thread))
            if memory_only and not in_memory:
                raise NotInMemory("needs MongoDB")
            return "answer"

        return run

    assert asyncio.run(memory_first(answer(in_memory=True))) == "answer"
    assert calls == [(True, True)]
    calls.clear()
    assert asyncio.run(memory_first(answer(in_memory=False))) == "answer"
    assert calls == [(True, True), (False, False)]
