"""Versioned publishing on the real FerretDB: the gate, the atomic switch, rollback, pruning."""

import threading
import uuid

import pytest

from podrec.serving.publish import (
    POINTER,
    PUBLISHES,
    PublishError,
    active_version,
    collection,
    publish,
    rollback,
)
from resources import build_resources

pytestmark = pytest.mark.integration


def lists(users: int, tag: str, broken: bool = False) -> list[dict]:
    docs = [
        {"_id": f"u{i}", "user_id": f"u{i}", "fallback": False, "policy": "hybrid", "bucket": i % 100,
         "experiment_id": "e", "model_version": tag, "rec_date": "2026-11-20", "locale": "en-US",
         "items": [{"rank": r + 1, "episode_id": f"{tag}-{r}", "canonical_episode_id": f"c{r}", "reason": "x"}
                   for r in range(3)]}
        for i in range(users)
    ]  # fmt: skip
    docs.append({**docs[0], "_id": "__popular__/en", "user_id": "__popular__/en", "fallback": True})
    if broken:  # the same canonical episode twice in one list
        docs[1]["items"][1]["canonical_episode_id"] = "c0"
    return docs


def similar() -> list[dict]:
    return [{"episode_id": "a", "items": [{"rank": 1, "episode_id": "b", "similarity": 0.5}]}]


def episodes() -> list[dict]:
    return [{"episode_id": "a", "canonical_episode_id": "a", "language": "en", "variants": []}]


@pytest.fixture
def db(local_infra, settings):
    database = build_resources(settings)["mongo"].client()[f"publish_{uuid.uuid4().hex[:8]}"]
    yield database
    database.client.drop_database(database.name)


def test_failed_gate_keeps_the_previous_version_and_rollback_restores_one(db) -> None:
    v1 = publish(
        db, "2026-11-20", lists(50, "m1"), similar(), episodes(), k=10, version="v20261120T000000Z-1"
    )
    assert v1["passed"] and active_version(db) == "v20261120T000000Z-1"

    bad = publish(db, "2026-11-21", lists(50, "m2", broken=True), similar(), episodes(), k=10,
                  version="v20261121T000000Z-2")  # fmt: skip
    assert not bad["passed"] and bad["failures"] == ["lists_well_formed"]
    assert active_version(db) == "v20261120T000000Z-1"  # still serving v1
    assert db[PUBLISHES].find_one({"_id": "v20261121T000000Z-2"})["status"] == "rejected"
    assert collection("recommendations", "v20261121T000000Z-2") not in db.list_collection_names()

    shrunk = publish(
        db, "2026-11-21", lists(10, "m3"), similar(), episodes(), k=10, version="v20261121T000001Z-3"
    )
    assert shrunk["failures"] == ["kept_users_of_previous"]  # 11 lists < half of 51

    v4 = publish(
        db, "2026-11-22", lists(60, "m4"), similar(), episodes(), k=10, version="v20261122T000000Z-4"
    )
    assert v4["passed"] and v4["previous"] == "v20261120T000000Z-1"
    assert rollback(db) == ("v20261120T000000Z-1", "v20261122T000000Z-4")
    served = db[collection("recommendations", active_version(db))].find_one({"user_id": "u1"})
    assert served["model_version"] == "m1"
    assert rollback(db, "v20261122T000000Z-4")[0] == "v20261122T000000Z-4"
    with pytest.raises(PublishError, match="does not exist"):
        rollback(db, "v20991231T000000Z-9")
    with pytest.raises(PublishError, match="not a version"):
        rollback(db, '{"$gt": ""}')


def test_retention_prunes_old_versions_but_never_the_rollback_target(db) -> None:
    for day in range(1, 7):
        publish(db, f"2026-11-0{day}", lists(20, f"m{day}"), similar(), episodes(), k=10, retention=2,
                version=f"v2026110{day}T000000Z-{day}")  # fmt: skip
    live = {r["_id"] for r in db[PUBLISHES].find({"status": {"$ne": "pruned"}})}
    assert live == {"v20261106T000000Z-6", "v20261105T000000Z-5"}
    names = db.list_collection_names()
    assert collection("recommendations", "v20261101T000000Z-1") not in names
    assert collection("recommendations", "v20261105T000000Z-5") in names


def test_readers_never_see_a_half_written_version(db) -> None:
    publish(db, "2026-11-20", lists(300, "old"), similar(), episodes(), k=10, version="v20261120T000000Z-1")
    seen: list[tuple[str, int]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            version = db[POINTER].find_one({"_id": "active"})["version"]
            seen.append((version, db[collection("recommendations", version)].count_documents({})))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        publish(
            db, "2026-11-21", lists(3000, "new"), similar(), episodes(), k=10, version="v20261121T000000Z-2"
        )
    finally:
        stop.set()
        reader.join()
    assert {n for v, n in seen if v.endswith("-1")} == {301}
    assert {n for v, n in seen if v.endswith("-2")} <= {3001}
    assert seen and active_version(db).endswith("-2")


def test_lists_are_read_by_id_from_an_index(db) -> None:
    """Serving reads each list by _id; the local FerretDB (patched in infra/ferretdb/patch.sh) must
    answer that from its index rather than scanning the collection."""
    publish(db, "2026-11-20", lists(50, "m1"), similar(), episodes(), k=10, version="v20261120T000000Z-1")
    recs = db[collection("recommendations", "v20261120T000000Z-1")]
    plan = recs.find({"_id": "u7"}).explain()
    assert any("USING INDEX" in step for step in plan["queryPlanner"]["Plan"]), plan
    assert recs.find_one({"_id": "u7"})["user_id"] == "u7"
