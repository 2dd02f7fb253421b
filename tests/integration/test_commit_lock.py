"""The commit lock on a real PostgreSQL (the one ``podrec infra`` starts for the cluster profile): two
writers of one table take turns, writers of different tables do not wait for each other, a writer waits
a bounded time and then names who holds the table, and no way of ending a write — an exception, a
killed process, a dropped session — leaves the table locked or passes unnoticed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from podrec.lake.commit_lock import CommitLock, CommitLockError
from podrec.settings import cluster_commit_lock
from podrec_app import localinfra
from tests.conftest import make_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
TABLE = "s3a://podrec/lakehouse/bronze/user_events"
OTHER = "s3a://podrec/lakehouse/bronze/user_events_rejected"
# Held in a child process until it is killed: prints once the lock is taken.
HOLDER = """
import sys, time
from podrec.lake.commit_lock import CommitLock
with CommitLock(sys.argv[1], wait_s=30).hold(sys.argv[2]):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    """A PostgreSQL on a free port with one password login, as the cluster profile initialises it."""
    # PostgreSQL runs as the postgres user, who cannot enter pytest's owner-only temporary folders.
    root = Path(tempfile.mkdtemp(prefix="podrec-lock-", dir="/tmp"))
    root.chmod(0o755)
    login = f"mongodb://podrec:pw-{uuid.uuid4().hex}@127.0.0.1:{localinfra.free_port()}/?authMechanism=PLAIN"
    settings = make_settings(root).with_(
        mongo={"uri": login, "local_backend": "postgresql"}, postgres={"port": localinfra.free_port()}
    )
    try:
        (started,) = localinfra.up(settings, only=["postgres"])
        assert started.healthy
        yield cluster_commit_lock(login, settings.postgres.port)
    finally:
        localinfra.down(settings)
        shutil.rmtree(root)


def in_thread(target: object) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_two_writers_of_one_table_take_turns(dsn: str) -> None:
    steps: list[str] = []
    first_in, let_go = threading.Event(), threading.Event()

    def first() -> None:
        with CommitLock(dsn, wait_s=30).hold(TABLE):
            steps.append("first in")
            first_in.set()
            let_go.wait(30)
            steps.append("first out")

    def second() -> None:
        first_in.wait(30)
        with CommitLock(dsn, wait_s=30).hold(TABLE):
            steps.append("second in")

    threads = [in_thread(first), in_thread(second)]
    assert first_in.wait(30)
    time.sleep(2)  # the second is at the lock by now; it must still be waiting
    assert steps == ["first in"]
    let_go.set()
    for thread in threads:
        thread.join(30)
    assert steps == ["first in", "first out", "second in"]


def test_writers_of_different_tables_do_not_wait_for_each_other(dsn: str) -> None:
    first_in, let_go, other_done = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with CommitLock(dsn, wait_s=30).hold(TABLE):
            first_in.set()
            let_go.wait(30)

    holder = in_thread(first)
    assert first_in.wait(30)
    with CommitLock(dsn, wait_s=30).hold(OTHER):
        other_done.set()
    assert other_done.is_set() and not let_go.is_set()  # done while the first still held its table
    let_go.set()
    holder.join(30)


def test_a_writer_waits_a_bounded_time_then_names_the_table_and_who_holds_it(dsn: str) -> None:
    held, let_go = threading.Event(), threading.Event()

    def first() -> None:
        with CommitLock(dsn, wait_s=30).hold(TABLE):
            held.set()
            let_go.wait(30)

    holder = in_thread(first)
    assert held.wait(30)
    started = time.monotonic()
    with pytest.raises(CommitLockError) as refused, CommitLock(dsn, wait_s=1.5).hold(TABLE):
        pytest.fail("wrote while another writer held the table")
    waited = time.monotonic() - started
    let_go.set()
    holder.join(30)
    assert 1.5 <= waited < 10
    message = str(refused.value)
    assert (
        TABLE in message
        and f"podrec {os.getpid()}@" in message
        and "PODREC_LAKE_COMMIT_LOCK_WAIT_S" in message
    )
    assert dsn.split("@")[0].split(":")[-1] not in message  # the password


def test_a_write_that_raises_releases_the_table(dsn: str) -> None:
    with pytest.raises(ValueError, match="the write failed"), CommitLock(dsn, wait_s=30).hold(TABLE):
        raise ValueError("the write failed")
    with CommitLock(dsn, wait_s=0.5).hold(TABLE):
        pass


def test_a_write_inside_a_write_of_the_same_table_holds_the_one_lock(dsn: str) -> None:
    lock = CommitLock(dsn, wait_s=0.5)  # taking it again would time out
    with lock.hold(TABLE), lock.hold(TABLE):
        pass
    with CommitLock(dsn, wait_s=0.5).hold(TABLE):  # and leaving the outer write released it
        pass


def test_a_killed_writer_never_leaves_its_table_locked(dsn: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", HOLDER, dsn, TABLE], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(CommitLockError, match=f"podrec {child.pid}@"), CommitLock(dsn, 0.5).hold(TABLE):
            pytest.fail("wrote while another process held the table")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    # Its session ended with it, and PostgreSQL dropped the lock.
    with CommitLock(dsn, wait_s=10).hold(TABLE):
        pass


def test_a_lock_lost_during_the_write_fails_the_write(dsn: str) -> None:
    with pytest.raises(CommitLockError, match="lost during its write"), CommitLock(dsn, 30).hold(TABLE):
        # PostgreSQL ends the writer's session (a restart, a network cut, an operator) mid-write.
        admin = psycopg2.connect(dsn)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (f"podrec {os.getpid()}@{os.uname().nodename}"[:63],),
            )
            assert cursor.fetchone()[0]
        admin.close()
