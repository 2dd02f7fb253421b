"""The API's read-through cache over the real FerretDB: a switch shows within version_cache_s, no
answer ever comes from a version other than the one it names, and the cache keeps to its budget.

Time is a hand-moved clock given to the store, so "within version_cache_s" is checked without waiting.
"""

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient
from pymongo.database import Database

from api.app import create_app
from api.auth import bearer
from api.store import ENTRY_OVERHEAD, ServingStore
from podrec.serving.publish import collection, publish, rollback
from podrec.settings import PodrecSettings
from podrec_app import localinfra
from resources import build_resources
from tests.conftest import make_settings

pytestmark = pytest.mark.integration

V1, V2, V3 = "v20261120T000000Z-1", "v20261121T000000Z-2", "v20261122T000000Z-3"


def lists(tag: str, users: int = 30) -> list[dict]:
    docs = [
        {"_id": f"u{i}", "user_id": f"u{i}", "fallback": False, "policy": "hybrid", "bucket": 1,
         "experiment_id": "e", "model_version": tag, "rec_date": "2026-11-20", "locale": "en-US",
         "items": [{"rank": r + 1, "episode_id": f"{tag}-{r}", "canonical_episode_id": f"c{r}", "reason": "x",
                    "variants": [{"episode_id": f"{tag}-{r}", "language": "en", "title": "t", "plays": 1}]}
                   for r in range(10)]}
        for i in range(users)
    ]  # fmt: skip
    popular = {**docs[0], "_id": "__popular__/en", "user_id": "__popular__/en", "fallback": True}
    return [*docs, popular]


def publish_tagged(db: Database, version: str) -> None:
    """A version whose every list carries the version's own name as its model_version."""
    episodes = [
        {"_id": "a", "episode_id": "a", "canonical_episode_id": "a", "language": "en", "variants": []}
    ]
    similar = [{"_id": "a", "episode_id": "a", "items": []}]
    assert publish(db, "2026-11-20", lists(version), similar, episodes, k=10, version=version)["passed"]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class FerretDB:
    settings: PodrecSettings
    client: MongoClient


@pytest.fixture(scope="module")
def ferretdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerretDB]:
    """Only FerretDB, on ports of its own."""
    own = make_settings(tmp_path_factory.mktemp("api_cache"))
    localinfra.up(own, only=["ferretdb"])
    try:
        yield FerretDB(own, build_resources(own)["mongo"].client())
    finally:
        localinfra.down(own, only=["ferretdb"])


@pytest.fixture
def db(ferretdb: FerretDB) -> Iterator[Database]:
    database = ferretdb.client[f"cache_{uuid.uuid4().hex[:8]}"]
    yield database
    ferretdb.client.drop_database(database.name)


def test_a_publish_or_rollback_shows_within_version_cache_s(db: Database) -> None:
    publish_tagged(db, V1)
    clock = Clock()
    store = ServingStore(db, version_cache_s=30.0, cache_bytes=2**20, clock=clock)
    version = store.active_version()
    assert store.user_list(version, "u1")["model_version"] == V1

    publish_tagged(db, V2)
    clock.now += 29.9  # still trusting the version it read: the old list, named as the old version
    version = store.active_version()
    assert (version, store.user_list(version, "u1")["model_version"]) == (V1, V1)
    clock.now += 0.1
    version = store.active_version()
    assert (version, store.user_list(version, "u1")["model_version"]) == (V2, V2)

    rollback(db)
    clock.now += 30.0
    version = store.active_version()
    assert (version, store.user_list(version, "u1")["model_version"]) == (V1, V1)
    assert {key[0] for key in store.cache._entries} == {V1}  # the switch dropped what V2 had left


def test_a_cached_list_is_answered_without_the_store_until_the_version_switches(db: Database) -> None:
    publish_tagged(db, V1)
    store = ServingStore(db, version_cache_s=0.0, cache_bytes=2**20, miss_bytes=2**16)
    assert store.user_list(store.active_version(), "u1")["model_version"] == V1
    assert store.user_list(store.active_version(), "nobody") is None
    # A served version never changes; here it is changed behind the API's back to prove the cache answers.
    db[collection("recommendations", V1)].delete_many({"_id": "u1"})
    db[collection("recommendations", V1)].insert_one({"_id": "nobody", "model_version": "sneaked in"})
    assert store.user_list(store.active_version(), "u1")["model_version"] == V1
    assert store.user_list(store.active_version(), "nobody") is None
    rollback(db, V1)  # re-activating the same version is still a switch: the cache is dropped
    assert store.user_list(store.active_version(), "u1") is None
    assert store.user_list(store.active_version(), "nobody")["model_version"] == "sneaked in"


def test_no_answer_comes_from_a_version_other_than_the_one_it_names(db: Database) -> None:
    """Readers race publishes and rollbacks: every list read must be the version it was read under."""
    publish_tagged(db, V1)
    store = ServingStore(db, version_cache_s=0.0, cache_bytes=2**20)
    mismatches: list[tuple[str, str]] = []
    reads = 0
    stop = threading.Event()

    def read() -> None:
        nonlocal reads
        while not stop.is_set():
            for user in ("u1", "u2", "u3", "someone-new"):
                version = store.active_version()
                doc = store.user_list(version, user) or store.popular_list(version, ["en"])
                if doc["model_version"] != version:
                    mismatches.append((version, doc["model_version"]))
                reads += 1

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        publish_tagged(db, V2)
        rollback(db)
        publish_tagged(db, V3)
        rollback(db, V2)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert reads > 0 and mismatches == []
    assert store.active_version() == V2


def test_the_cache_keeps_to_its_byte_budget(db: Database) -> None:
    publish_tagged(db, V1)
    budget = 20_000  # a list here is ~1.5 KB of BSON: about a dozen fit
    store = ServingStore(db, version_cache_s=60.0, cache_bytes=budget)
    version = store.active_version()
    for i in range(30):
        assert store.user_list(version, f"u{i}")["user_id"] == f"u{i}"
    assert 0 < len(store.cache) < 30 and store.cache.size_bytes <= budget
    assert store.user_list(version, "u0")["user_id"] == "u0"  # evicted earlier: read again from the store


def test_the_api_answers_from_memory_and_names_the_version_its_list_came_from(ferretdb, db) -> None:
    publish_tagged(db, V1)
    own = ferretdb.settings.with_(mongo={"database": db.name}, api={"version_cache_s": 3600.0, "cache_mb": 1})
    with TestClient(create_app(own), headers=bearer(own, "tests")) as client:
        first = client.get("/users/u1/recommendations").json()  # read from FerretDB, in a thread
        db[collection("recommendations", V1)].delete_many({"_id": "u1"})  # (never done to a served version)
        again = client.get("/users/u1/recommendations").json()  # from memory, on the event loop
        # The same list; each answer is an impression of its own (a new id unless X-Request-Id repeats).
        listing = lambda answer: {k: v for k, v in answer.items() if k != "impression_id"}  # noqa: E731
        assert listing(again) == listing(first) and again["impression_id"] != first["impression_id"]
        assert (first["serving_version"], first["model_version"]) == (V1, V1)
        publish_tagged(db, V2)  # within version_cache_s the API may still serve V1, but only as V1
        stale = client.get("/users/u2/recommendations").json()
        assert (stale["serving_version"], stale["model_version"]) == (V1, V1)


def test_made_up_ids_are_remembered_apart_and_never_evict_a_real_list(db: Database) -> None:
    publish_tagged(db, V1)
    lookups: Counter[str] = Counter()
    store = ServingStore(
        db, version_cache_s=60.0, cache_bytes=2**20, miss_bytes=50 * ENTRY_OVERHEAD,
        observe=lambda kind, result: lookups.update([result]),
    )  # fmt: skip
    version = store.active_version()
    for i in range(10):
        assert store.user_list(version, f"u{i}")["user_id"] == f"u{i}"
    for i in range(500):  # a caller cycling through made-up ids: each a miss, each read once
        assert store.user_list(version, f"made-up-{i}") is None
    assert (len(store.cache), len(store.misses)) == (10, 50)  # the misses keep to their own budget
    db[collection("recommendations", V1)].delete_many({})  # (never done to a served version)
    for i in range(10):  # every real list still answers from memory
        assert store.user_list(version, f"u{i}", memory_only=True)["user_id"] == f"u{i}"
    assert store.user_list(version, "made-up-499", memory_only=True) is None  # the newest misses stay
    assert lookups == {"miss": 510, "hit": 10, "negative_hit": 1}
