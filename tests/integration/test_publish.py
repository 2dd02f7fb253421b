"""Versioned publishing on the real FerretDB: the gate, the atomic switch, only forward by itself, rollback,
pruning, and the `podrec publish` commands."""

import threading
import uuid

import pytest
from click.testing import CliRunner, Result

from podrec.serving.publish import (
    POINTER,
    PUBLISHES,
    OlderThanActive,
    PublishError,
    activate,
    active_version,
    collection,
    publish,
    rollback,
)
from podrec_app.cli import main
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


NEW, OLD, RERUN = "v20261122T000000Z-new", "v20261122T000001Z-old", "v20261122T000002Z-rerun"


def test_an_older_day_is_staged_and_held_while_the_newer_keeps_serving(db) -> None:
    """A backfill publishes last week after today serves: staged, gated and kept, never switched to."""
    publish(db, "2026-11-20", lists(50, "m0"), similar(), episodes(), k=10, version="v20261121T000000Z-0")
    publish(db, "2026-11-21", lists(50, "m1"), similar(), episodes(), k=10, version=NEW)
    older = publish(db, "2026-11-14", lists(50, "m2"), similar(), episodes(), k=10, retention=1, version=OLD)
    assert older["passed"] and older["active"] == NEW and active_version(db) == NEW
    assert older["held"] == f"older than the active version {NEW} (2026-11-21)"
    record = db[PUBLISHES].find_one({"_id": OLD})
    assert (record["status"], record["held"]) == ("staged", older["held"])
    # retention 1 keeps the newest publish (the held one), the serving one and its rollback target
    live = {r["_id"] for r in db[PUBLISHES].find({"status": {"$ne": "pruned"}})}
    assert live == {OLD, NEW, "v20261121T000000Z-0"}
    assert collection("recommendations", OLD) in db.list_collection_names()

    rerun = publish(db, "2026-11-21", lists(50, "m3"), similar(), episodes(), k=10, version=RERUN)
    assert rerun["held"] is None and active_version(db) == RERUN  # re-running the serving day still switches
    # Going back lands on the version before in serving order (date, then publish time), not on the
    # newest publish before it, which is the held older day.
    assert rollback(db) == (NEW, RERUN)
    with pytest.raises(OlderThanActive, match=r"2026-11-14, older than the active version .*2026-11-21"):
        activate(db, OLD)
    assert active_version(db) == NEW
    assert activate(db, OLD, older=True) == NEW and active_version(db) == OLD
    assert activate(db, NEW) == OLD  # forward again needs nothing


def test_a_version_that_failed_its_gate_never_serves_even_when_forced(db) -> None:
    publish(db, "2026-11-20", lists(50, "m1"), similar(), episodes(), k=10, version="v20261120T000000Z-1")
    bad = publish(db, "2026-11-21", lists(50, "m2", broken=True), similar(), episodes(), k=10,
                  version="v20261121T000000Z-2")  # fmt: skip
    assert not bad["passed"] and bad["held"] is None
    with pytest.raises(PublishError, match="has not passed its gate"):
        activate(db, "v20261121T000000Z-2", older=True)
    assert active_version(db) == "v20261120T000000Z-1"


def test_publish_commands_show_held_versions_and_go_back_only_when_told(db, settings) -> None:
    publish(db, "2026-11-21", lists(50, "m1"), similar(), episodes(), k=10, version=NEW)
    publish(db, "2026-11-14", lists(50, "m2"), similar(), episodes(), k=10, version=OLD)
    env = {"PODREC_MONGO_URI": settings.mongo.uri.get_secret_value(), "PODREC_MONGO_DATABASE": db.name}

    def podrec(*args: str) -> Result:
        return CliRunner().invoke(main, ["publish", *args], env=env)

    status = podrec("status").stdout
    (held,) = [line for line in status.splitlines() if OLD in line]
    assert "2026-11-14" in held and "staged" in held and f"held: older than the active version {NEW}" in held
    refused = podrec("activate", OLD)
    assert refused.exit_code == 1 and active_version(db) == NEW
    assert refused.stderr.strip().splitlines() == [
        f"Error: version {OLD} is for 2026-11-14, older than the active version {NEW} (2026-11-21); "
        "add --force to serve it anyway (going back is explicit)"
    ]
    forced = podrec("activate", OLD, "--force")
    assert forced.exit_code == 0 and forced.stdout.strip() == f"serving {OLD} (was {NEW})"
    missing = podrec("activate", "v20991231T000000Z-9")
    assert missing.exit_code == 1 and missing.stderr.strip().splitlines() == [
        "Error: version v20991231T000000Z-9 does not exist or was pruned"
    ]
