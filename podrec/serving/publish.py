"""Versioned MongoDB publishing (docs/serving.md, Publishing to MongoDB): stage, gate, switch atomically and
only forward, keep, roll back.

A version is a set of collections suffixed with its name (``recommendations__v…``,
``similar__v…``, ``episodes__v…``) plus a document in ``publishes``. Serving reads the active
version from one pointer document (``serving``, ``_id: "active"``); switching is a single-document
update — atomic on MongoDB and on FerretDB alike, with no multi-document transaction — made only
after the staged collections are complete and their gate checks pass. Readers therefore see the
old version or the new one, never a half-written one, and the previous version stays for rollback.

Serving only moves forward by itself: a version whose ``rec_date`` is older than the active one's (a
backfill of a past day) is staged, gated and kept, but *held* — its record says so — and only an
operator's explicit rollback or forced activation serves it. The switch is a compare-and-set on the
version it replaces, so a backfill's publish racing the daily one cannot slip in between the date check
and the write. A re-run of the active day (same ``rec_date``) still switches.

Staging is a bulk load: unordered batches, ``parallel_batches`` in flight at once (FerretDB converts
each connection's documents in parallel; only its SQLite writes take turns), and the secondary
index built after the load. The gate's
checks on the lists are made on each list as it goes to the store, so the gate never reads the
version back (FerretDB decodes every document it returns, which made the read-back twice as slow as
the load); what the store holds is checked by its own counts against what it acknowledged.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from pymongo import ASCENDING, IndexModel, InsertOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from podrec.settings import PublishSettings

POINTER = "serving"
PUBLISHES = "publishes"
KINDS = ("recommendations", "similar", "episodes")
# Lists and neighbours are read by _id (the listener or episode id); episodes also by canonical id.
INDEXES = {"episodes": [IndexModel([("canonical_episode_id", ASCENDING)])]}
_VERSION = re.compile(r"^v\d{8}T\d{6}Z?[-\w]*$")


class PublishError(RuntimeError):
    """A publish or rollback that cannot go ahead; the active version is unchanged."""


class OlderThanActive(PublishError):
    """Serving ``version`` would move listeners back to an older day, which only an operator may choose."""

    def __init__(self, version: str, rec_date: str, active: str, active_rec_date: str) -> None:
        self.reason = f"older than the active version {active} ({active_rec_date})"
        super().__init__(f"version {version} is for {rec_date}, {self.reason}")


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


@dataclass
class ListChecks:
    """The gate's checks on the lists, made on each list on its way to the store (``observe``)."""

    k: int
    within_k: bool = True
    well_formed: bool = True
    popular: bool = False

    def observe(self, lists: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for doc in lists:
            items = doc["items"]
            self.within_k &= 0 < len(items) <= self.k
            self.well_formed &= _well_formed(items)
            self.popular |= doc.get("fallback") is True
            yield doc


def _batches(docs: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(docs)
    while batch := list(islice(it, size)):
        yield batch


def _insert(target: Collection, kind: str, batch: list[dict[str, Any]]) -> tuple[str, int]:
    """One unordered batch; the count is the store's own acknowledgement, not the batch's length."""
    return kind, target.bulk_write([InsertOne(doc) for doc in batch], ordered=False).inserted_count


def stage(
    db: Database,
    version: str,
    recommendations: Iterable[dict[str, Any]],
    similar: Iterable[dict[str, Any]],
    episodes: Iterable[dict[str, Any]],
    batch_size: int,
    parallel_batches: int,
) -> dict[str, int]:
    """Write a version's collections in bulk, then their secondary indexes; nothing reads them yet.

    Batches are built (and documents generated) here while up to ``parallel_batches`` are written;
    any failed write raises, so a version is either complete or never gated."""
    targets = {kind: db[collection(kind, version)] for kind in KINDS}
    for target in targets.values():
        target.drop()  # a re-staged version starts clean
        db.create_collection(target.name)  # even an empty kind exists, so the gate can count it
    counts = dict.fromkeys(KINDS, 0)

    def collect(done: Iterable[Future[tuple[str, int]]]) -> None:
        for future in done:
            kind, n = future.result()
            counts[kind] += n

    with ThreadPoolExecutor(parallel_batches, thread_name_prefix="podrec-stage") as pool:
        pending: set[Future[tuple[str, int]]] = set()
        for kind, docs in zip(KINDS, (recommendations, similar, episodes), strict=True):
            for batch in _batches(docs, batch_size):
                if len(pending) >= 2 * parallel_batches:  # bounded memory: never more than this queued
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    collect(done)
                pending.add(pool.submit(_insert, targets[kind], kind, batch))
        collect(wait(pending).done)
    for kind, indexes in INDEXES.items():
        targets[kind].create_indexes(indexes)  # after the load: one index build, not one per insert
    return counts


def stored_counts(db: Database, version: str, expected: dict[str, int]) -> dict[str, int]:
    """Documents per kind as the store holds them: first from its own storage statistics
    ($collStats, no documents read), and where those disagree with ``expected``, by an exact count.
    Statistics can be estimates — FerretDB on PostgreSQL reports the planner's row estimate, which
    lags a bulk load — so they may only ever confirm, never fail, a version."""
    out = {}
    for kind in KINDS:
        stored = db[collection(kind, version)]
        stats = list(stored.aggregate([{"$collStats": {"count": {}}}]))
        out[kind] = stats[0]["count"] if stats else 0
        if out[kind] != expected.get(kind):
            out[kind] = stored.count_documents({})
    return out


def gate(
    db: Database,
    version: str,
    counts: dict[str, int],
    lists: ListChecks,
    min_share_of_previous: float,
) -> GateResult:
    """Checks a version must pass before it may serve.

    Every kind is non-empty and stored as acknowledged; lists have ranks 1..n ≤ k and no canonical
    episode twice; there is a popular list for new listeners; and the version holds at least
    ``min_share_of_previous`` of the active version's users, so a broken upstream day cannot
    silently shrink what is served. The list checks were made in Python as the lists were staged:
    FerretDB lacks parts of $expr, and the gate must read the same on both stores.
    """
    checks: dict[str, bool] = {f"{kind}_not_empty": counts.get(kind, 0) > 0 for kind in KINDS}
    checks["stored_as_staged"] = stored_counts(db, version, counts) == counts
    checks["lists_within_k"] = lists.within_k
    checks["lists_well_formed"] = lists.well_formed
    checks["popular_lists_present"] = lists.popular
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


def _rec_date(db: Database, version: str) -> str:
    return (db[PUBLISHES].find_one({"_id": version}, {"rec_date": 1}) or {}).get("rec_date", "")


def _swap(db: Database, expected: str | None, switch: dict[str, Any]) -> bool:
    """Compare-and-set of the pointer: False when another switch got there first (look again)."""
    if expected is None:
        try:
            db[POINTER].insert_one({"_id": "active", **switch})
        except DuplicateKeyError:
            return False
        return True
    return db[POINTER].update_one({"_id": "active", "version": expected}, {"$set": switch}).matched_count == 1


def activate(db: Database, version: str, older: bool = False) -> str | None:
    """Point serving at ``version`` in one single-document write; returns the version it replaced.

    A version whose ``rec_date`` is older than the active one's raises ``OlderThanActive`` unless
    ``older`` (an operator going back on purpose); one that failed its gate never serves."""
    record = db[PUBLISHES].find_one({"_id": version})
    if record is None or record.get("status") == "pruned":
        raise PublishError(f"version {version} does not exist or was pruned")
    if not record.get("gate", {}).get("passed"):
        raise PublishError(f"version {version} has not passed its gate checks; it cannot serve")
    rec_date = record.get("rec_date", "")
    while True:
        previous = active_version(db)
        if previous is not None and not older:
            current = _rec_date(db, previous)
            if rec_date < current:
                raise OlderThanActive(version, rec_date, previous, current)
        now = datetime.now(UTC)
        if _swap(db, previous, {"version": version, "since": now, "previous": previous}):
            break
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
    min_share_of_previous: float | None = None,
    retention: int | None = None,
    version: str | None = None,
    batch_size: int | None = None,
    parallel_batches: int | None = None,
) -> dict[str, Any]:
    """Stage, gate, and — only if the gate passes and its day is not older than the active one's —
    activate a new version; then prune.

    A failed gate leaves the version's record (``status: rejected``, with the failing checks)
    and the previously active version serving. An older day (a backfill) stays ``staged`` with a
    ``held`` reason, kept for rollback. Knobs left out take their ``settings.publish`` defaults.
    """
    given = {"min_share_of_previous": min_share_of_previous, "retention": retention,
             "batch_size": batch_size, "parallel_batches": parallel_batches}  # fmt: skip
    knobs = PublishSettings().updated(**{name: v for name, v in given.items() if v is not None})
    version = version or new_version(rec_date)
    started = datetime.now(UTC)
    db[PUBLISHES].update_one(
        {"_id": version},
        {"$set": {"rec_date": rec_date, "status": "staging", "started_at": started}},
        upsert=True,
    )
    clock = time.perf_counter()
    lists = ListChecks(k)
    counts = stage(db, version, lists.observe(recommendations), similar, episodes, knobs.batch_size,
                   knobs.parallel_batches)  # fmt: skip
    seconds = {"stage": time.perf_counter() - clock}
    result = gate(db, version, counts, lists, knobs.min_share_of_previous)
    seconds["gate"] = time.perf_counter() - clock - seconds["stage"]
    db[PUBLISHES].update_one(
        {"_id": version},
        {"$set": {"counts": counts, "gate": {"passed": result.passed, "checks": result.checks,
                                             "failures": result.failures},
                  "status": "staged" if result.passed else "rejected", "staged_at": datetime.now(UTC)}},
    )  # fmt: skip
    previous = active_version(db)
    held = None
    if result.passed:
        try:
            previous = activate(db, version)
        except OlderThanActive as older:
            held = older.reason
            db[PUBLISHES].update_one({"_id": version}, {"$set": {"held": held}})
    pruned = prune(db, knobs.retention)
    seconds["total"] = time.perf_counter() - clock
    return {
        "version": version, "active": active_version(db), "previous": previous, "passed": result.passed,
        "held": held, "failures": result.failures, "counts": counts, "pruned": pruned, "seconds": seconds,
    }  # fmt: skip


def rollback_target(db: Database) -> str | None:
    """The kept, passed version just before the active one in serving order — by ``rec_date``, then by
    publish time — so going back from today lands on yesterday, not on a backfill published since."""
    current = active_version(db)
    top = (_rec_date(db, current), current) if current else ("~", "~")
    live = db[PUBLISHES].find({"gate.passed": True, "status": {"$ne": "pruned"}}, {"rec_date": 1})
    below = [key for key in ((r.get("rec_date", ""), r["_id"]) for r in live) if key < top]
    return max(below)[1] if below else None


def rollback(db: Database, version: str | None = None) -> tuple[str, str | None]:
    """Re-activate ``version``, or the ``rollback_target``; going back on purpose, so an older day may serve.

    Returns (now active, replaced)."""
    if version is not None and not _VERSION.match(version):
        raise PublishError(f"not a version name: {version!r}")
    if version is None:
        version = rollback_target(db)
        if version is None:
            raise PublishError(f"no earlier passed version to roll back to (active: {active_version(db)})")
    return version, activate(db, version, older=True)


def prune(db: Database, retention: int) -> list[str]:
    """Drop the collections of all but the newest ``retention`` passed versions (held ones included);
    never the active one, the one it replaced, nor the rollback target. Rejected versions are dropped at
    once."""
    active = active_version(db)
    pointer = db[POINTER].find_one({"_id": "active"}) or {}
    keep = {active, pointer.get("previous"), rollback_target(db)}
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
