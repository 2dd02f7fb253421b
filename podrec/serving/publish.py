"""Versioned MongoDB publishing (DESIGN.md, Publish): stage, gate, switch atomically, keep, roll back.

A version is a set of collections suffixed with its name (``recommendations__v…``,
``similar__v…``, ``episodes__v…``) plus a document in ``publishes``. Serving reads the active
version from one pointer document (``serving``, ``_id: "active"``); switching is a single-document
update — atomic on MongoDB and on FerretDB alike, with no multi-document transaction — made only
after the staged collections are complete and their gate checks pass. Readers therefore see the
old version or the new one, never a half-written one, and the previous version stays for rollback.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.database import Database

POINTER = "serving"
PUBLISHES = "publishes"
KINDS = ("recommendations", "similar", "episodes")
BATCH = 5_000
_VERSION = re.compile(r"^v\d{8}T\d{6}Z?[-\w]*$")


class PublishError(RuntimeError):
    """A publish or rollback that cannot go ahead; the active version is unchanged."""


@dataclass
class GateResult:
    passed: bool
    checks: dict[str, bool]
    failures: list[str] = field(default_factory=list)


def collection(kind: str, version: str) -> str:
    return f"{kind}__{version}"


def new_version(rec_date: str, now: datetime | None = None) -> str:
    """Sortable, unique per publish: ``v20261124T230102Z-2026-11-23``."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"v{stamp}-{rec_date}"


def _batches(docs: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    it = iter(docs)
    while batch := list(islice(it, BATCH)):
        yield batch


def stage(
    db: Database,
    version: str,
    recommendations: Iterable[dict[str, Any]],
    similar: Iterable[dict[str, Any]],
    episodes: Iterable[dict[str, Any]],
) -> dict[str, int]:
    """Write a version's collections in bulk, with their indexes; nothing reads them yet."""
    counts = {}
    # Lists and neighbours are read by _id (the listener or episode id); episodes also by canonical id.
    indexes = {"episodes": [IndexModel([("canonical_episode_id", ASCENDING)])]}
    for kind, docs in zip(KINDS, (recommendations, similar, episodes), strict=True):
        target = db[collection(kind, version)]
        target.drop()  # a re-staged version starts clean
        if kind in indexes:
            target.create_indexes(indexes[kind])
        counts[kind] = 0
        for batch in _batches(docs):
            target.insert_many(batch, ordered=False)
            counts[kind] += len(batch)
    return counts


def gate(
    db: Database, version: str, counts: dict[str, int], k: int, min_share_of_previous: float
) -> GateResult:
    """Checks a version must pass before it may serve.

    Every kind is non-empty; lists have ranks 1..n ≤ k and no canonical episode twice; there is a
    popular list for new listeners; and the version holds at least ``min_share_of_previous`` of
    the active version's users, so a broken upstream day cannot silently shrink what is served.
    """
    checks: dict[str, bool] = {f"{kind}_not_empty": counts.get(kind, 0) > 0 for kind in KINDS}
    recs = db[collection("recommendations", version)]
    # Checked in Python over every list: FerretDB lacks parts of $expr, and the gate must read the
    # same on both stores.
    sizes_ok, formed_ok = True, True
    for doc in recs.find({}, {"items": 1}):
        sizes_ok &= 0 < len(doc["items"]) <= k
        formed_ok &= _well_formed(doc["items"])
    checks["lists_within_k"] = sizes_ok
    checks["lists_well_formed"] = formed_ok
    checks["popular_lists_present"] = recs.find_one({"fallback": True}) is not None
    previous = active_version(db)
    if previous is not None:
        before = db[PUBLISHES].find_one({"_id": previous}) or {}
        users_before = (before.get("counts") or {}).get("recommendations", 0)
        checks["kept_users_of_previous"] = (
            counts.get("recommendations", 0) >= min_share_of_previous * users_before
        )
    failures = [name for name, ok in checks.items() if not ok]
    return GateResult(passed=not failures, checks=checks, failures=failures)


def _well_formed(items: list[dict[str, Any]]) -> bool:
    ranks = [i["rank"] for i in items]
    canonical = [i["canonical_episode_id"] for i in items]
    return ranks == list(range(1, len(items) + 1)) and len(set(canonical)) == len(canonical)


def active_version(db: Database) -> str | None:
    pointer = db[POINTER].find_one({"_id": "active"})
    return pointer["version"] if pointer else None


def activate(db: Database, version: str) -> str | None:
    """Point serving at ``version`` in one single-document write; returns the version it replaced."""
    record = db[PUBLISHES].find_one({"_id": version})
    if record is None or not record.get("gate", {}).get("passed"):
        raise PublishError(f"version {version} has not passed its gate checks; it cannot serve")
    previous = active_version(db)
    now = datetime.now(UTC)
    db[POINTER].update_one(
        {"_id": "active"}, {"$set": {"version": version, "since": now, "previous": previous}}, upsert=True
    )
    db[PUBLISHES].update_one({"_id": version}, {"$set": {"status": "active", "activated_at": now}})
    if previous and previous != version:
        db[PUBLISHES].update_one({"_id": previous}, {"$set": {"status": "standby"}})
    return previous


def publish(
    db: Database,
    rec_date: str,
    recommendations: Iterable[dict[str, Any]],
    similar: Iterable[dict[str, Any]],
    episodes: Iterable[dict[str, Any]],
    k: int,
    min_share_of_previous: float = 0.5,
    retention: int = 3,
    version: str | None = None,
) -> dict[str, Any]:
    """Stage, gate, and — only if the gate passes — activate a new version; then prune.

    A failed gate leaves the version's record (``status: rejected``, with the failing checks)
    and the previously active version serving.
    """
    version = version or new_version(rec_date)
    started = datetime.now(UTC)
    db[PUBLISHES].update_one(
        {"_id": version},
        {"$set": {"rec_date": rec_date, "status": "staging", "started_at": started}},
        upsert=True,
    )
    counts = stage(db, version, recommendations, similar, episodes)
    result = gate(db, version, counts, k, min_share_of_previous)
    db[PUBLISHES].update_one(
        {"_id": version},
        {"$set": {"counts": counts, "gate": {"passed": result.passed, "checks": result.checks,
                                             "failures": result.failures},
                  "status": "staged" if result.passed else "rejected", "staged_at": datetime.now(UTC)}},
    )  # fmt: skip
    previous = active_version(db)
    if result.passed:
        previous = activate(db, version)
    pruned = prune(db, retention)
    return {
        "version": version, "active": active_version(db), "previous": previous, "passed": result.passed,
        "failures": result.failures, "counts": counts, "pruned": pruned,
    }  # fmt: skip


def rollback(db: Database, version: str | None = None) -> tuple[str, str | None]:
    """Re-activate ``version``, or the newest passed version older than the active one.

    Returns (now active, replaced)."""
    if version is not None and not _VERSION.match(version):
        raise PublishError(f"not a version name: {version!r}")
    current = active_version(db)
    if version is None:
        candidates = (
            db[PUBLISHES]
            .find({"gate.passed": True, "_id": {"$lt": current or "~"}, "status": {"$ne": "pruned"}})
            .sort("_id", -1)
            .limit(1)
        )
        found = next(iter(candidates), None)
        if found is None:
            raise PublishError(f"no earlier passed version to roll back to (active: {current})")
        version = found["_id"]
    record = db[PUBLISHES].find_one({"_id": version})
    if record is None or record.get("status") == "pruned":
        raise PublishError(f"version {version} does not exist or was pruned")
    return version, activate(db, version)


def prune(db: Database, retention: int) -> list[str]:
    """Drop the collections of all but the newest ``retention`` passed versions; never the active
    one nor the one it replaced (the rollback target). Rejected versions are dropped at once."""
    active = active_version(db)
    pointer = db[POINTER].find_one({"_id": "active"}) or {}
    keep = {active, pointer.get("previous")}
    passed = [
        r["_id"]
        for r in db[PUBLISHES].find({"gate.passed": True, "status": {"$ne": "pruned"}}).sort("_id", -1)
    ]
    keep |= set(passed[:retention])
    doomed = [v for v in passed if v not in keep]
    rejected = [r["_id"] for r in db[PUBLISHES].find({"status": "rejected", "pruned_at": {"$exists": False}})]
    now = datetime.now(UTC)
    for version in doomed + rejected:
        for kind in KINDS:
            db.drop_collection(collection(kind, version))
        update = {"pruned_at": now} | ({"status": "pruned"} if version in doomed else {})
        db[PUBLISHES].update_one({"_id": version}, {"$set": update})
    return doomed + rejected
