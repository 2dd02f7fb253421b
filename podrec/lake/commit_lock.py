"""One writer at a time per Delta table on an object store, across processes and machines.

Why: a Delta commit is the creation of the table's next ``_delta_log/<version>.json``, and it is only
as safe as that creation is atomic. A local filesystem makes it so (a rename that never overwrites); an
S3-API store does not: Spark's default S3 log store assumes a single driver, and delta-rs writes there
with ``AWS_S3_ALLOW_UNSAFE_RENAME``. Two writers committing the same version at once both succeed and
the later file replaces the earlier, silently — an ingestion's exactly-once fence (``txnAppId``,
``podrec.lake.delta.append_once``) or a forget's deletes are lost. ``podrec ingest`` or
``podrec forget`` beside a Dagster run is such a pair.

How: every write of ``podrec.lake.delta`` (Spark and delta-rs) and of the table upkeep
(``podrec.lake.maintenance``) runs inside ``committing(uri)``, which holds a PostgreSQL session-level
advisory lock on a 64-bit key derived from the table's location (``lock_key``) for the whole write
call. Whatever a write reads, checks and commits happens with no other podrec writer of that table in
between, and the version it reports is its own; different tables have different keys and never wait
for each other. The lock is PostgreSQL's, tied to the writer's session: it is released when the write
ends or raises, and when the process dies (its connection closes with it), so a crashed writer never
leaves a table locked. A writer waits at most ``commit_lock_wait_s`` and then fails, naming the table
and the writer that holds it; a lock lost while writing (the connection to PostgreSQL dropped) fails
the write after its commit, since another writer may have committed beside it.

Where the lock lives: ``PODREC_LAKE_COMMIT_LOCK`` (``settings.lake.commit_lock``), a ``postgresql://``
URI — the cluster profile points it at the PostgreSQL it already runs for Dagster and FerretDB. Every
writer of a lake must name the same database (advisory locks are per database). A lake on the local
filesystem takes no lock and never connects. On an object store with the setting unset podrec takes
no lock either: the deployment's own log stores (Delta's ``S3DynamoDBLogStore``, delta-rs' locking
provider) must then serialise its writers.

Configuration is per process, like the ``AWS_*`` variables set by the same call: ``configure(lake)``,
made by ``podrec.lake.object_store.use_object_store`` — the call the command line and the code location
(``build_definitions``) already make before they touch the lake. So the library reads no settings of
its own, and no asset branches on the deployment. A process that writes to an object-store lake
without that call is refused, rather than left to commit unserialised.

Held for the whole write, the lock also covers the Spark job that computes the rows. On a standalone
cluster whose applications each take every core, a writer that holds the lock but waits for executors
owned by another application that waits for the same lock makes that one fail after its wait; give
such applications ``spark.cores.max`` (``PODREC_SPARK_CONF``) when their writes share tables.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from podrec.lake.paths import delta_rs_uri
from podrec.settings import redact_uri

if TYPE_CHECKING:
    from podrec.settings import LakeSettings

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 10
# PostgreSQL shows each session's application_name (pg_stat_activity): the holder a waiting writer names.
_NAME_LIMIT = 63


class CommitLockError(RuntimeError):
    """A table's commit lock could not be taken (nothing was written), or was lost during the write."""


def lock_key(uri: str) -> int:
    """The table's advisory-lock key: 64 bits of SHA-256 of its location as delta-rs names it (so
    ``s3a://b/t`` and ``s3://b/t`` are one table), signed like PostgreSQL's bigint. Two tables sharing a
    key would only take turns, never lose a commit."""
    place = delta_rs_uri(uri).rstrip("/")
    digest = hashlib.sha256(f"podrec-commit:{place}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def on_local_filesystem(uri: str) -> bool:
    """A plain path or ``file://``: Delta's own rename is atomic there, so no lock is needed."""
    return "://" not in uri or uri.startswith("file://")


_held = threading.local()  # .keys: the keys this thread holds, so a write inside a write takes none again


def _held_keys() -> set[int]:
    if not hasattr(_held, "keys"):
        _held.keys = set()
    return _held.keys


class CommitLock:
    """Advisory locks in one PostgreSQL database, one connection (session) per lock held."""

    def __init__(self, dsn: str, wait_s: float) -> None:
        self._dsn = dsn  # holds the password: never printed, only ``address``
        self.wait_s = wait_s
        self.address = redact_uri(dsn)

    @contextmanager
    def hold(self, uri: str) -> Iterator[None]:
        """Hold ``uri``'s lock for the ``with`` block. A thread already holding it (a write that calls
        another write of the same table) goes on under the one it has."""
        key = lock_key(uri)
        held = _held_keys()
        if key in held:
            yield
            return
        connection = self._take(uri, key)
        held.add(key)
        written = False
        try:
            yield
            written = True
        finally:
            held.discard(key)
            try:
                if written:
                    self._release(connection, uri, key)
            finally:
                connection.close()  # the session ends: PostgreSQL drops any lock it still held

    def _take(self, uri: str, key: int) -> Any:
        import psycopg2

        who = f"podrec {os.getpid()}@{socket.gethostname()}"[:_NAME_LIMIT]
        try:
            connection = psycopg2.connect(self._dsn, connect_timeout=CONNECT_TIMEOUT_S, application_name=who)
        except psycopg2.OperationalError as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            reason = lines[0] if lines else type(exc).__name__
            raise CommitLockError(
                f"cannot write {uri}: its commit lock at {self.address} is unreachable ({reason}); start it "
                "(`podrec infra up`) or point PODREC_LAKE_COMMIT_LOCK at a running PostgreSQL"
            ) from None
        # A session-level lock outlives transactions: autocommit leaves none open while the write runs.
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                if cursor.fetchone()[0]:
                    return connection
                log.info("waiting for the commit lock of %s, held by %s", uri, _holder(cursor, key))
                timeout_ms = max(1, round(self.wait_s * 1000))
                cursor.execute("SELECT set_config('lock_timeout', %s, false)", (f"{timeout_ms}ms",))
                try:
                    cursor.execute("SELECT pg_advisory_lock(%s)", (key,))
                except psycopg2.errors.LockNotAvailable:
                    raise CommitLockError(
                        f"cannot write {uri}: {_holder(cursor, key)} held its commit lock for all of the "
                        f"{self.wait_s:g} s this writer waits (PODREC_LAKE_COMMIT_LOCK_WAIT_S); nothing was "
                        "written: run it again once that writer is done"
                    ) from None
            return connection
        except BaseException:
            connection.close()
            raise

    def _release(self, connection: Any, uri: str, key: int) -> None:
        """Unlock; a lock that is gone by now (the session ended under the write) is an error."""
        import psycopg2

        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (key,))
                still_held = bool(cursor.fetchone()[0])
        except psycopg2.Error:
            still_held = False
        if not still_held:
            raise CommitLockError(
                f"the commit lock of {uri} was lost during its write (the session at {self.address} "
                "ended): the write committed, but another writer may have committed beside it — check the "
                "table's history before running it again"
            )


def _holder(cursor: Any, key: int) -> str:
    """Who holds ``key`` now, by its session's application_name (``podrec <pid>@<host>``)."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    # A bigint key shows in pg_locks as its high half (classid) and low half (objid), objsubid 1.
    cursor.execute(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND l.classid::bigint = %s AND l.objid::bigint = %s",
        (unsigned >> 32, unsigned & 0xFFFF_FFFF),
    )
    row = cursor.fetchone()
    return row[0] if row and row[0] else "another writer"


# This process's lock: absent until ``configure``, None when the lake's writers are not podrec's to serialise.
_process: dict[str, CommitLock | None] = {}


def configure(lake: LakeSettings) -> None:
    """Set this process's commit lock from ``lake`` (``use_object_store`` calls this)."""
    dsn = lake.commit_lock
    _process["lock"] = None if dsn is None else CommitLock(dsn.get_secret_value(), lake.commit_lock_wait_s)


@contextmanager
def committing(uri: str) -> Iterator[None]:
    """Hold ``uri``'s commit lock around a write: nothing at all for a table on the local filesystem."""
    if on_local_filesystem(uri):
        yield
        return
    if "lock" not in _process:
        raise CommitLockError(
            f"cannot write {uri}: this process never called podrec.lake.object_store.use_object_store"
            "(settings.lake), which sets how its commits to an object store are serialised"
        )
    lock = _process["lock"]
    if lock is None:
        yield
        return
    with lock.hold(uri):
        yield
