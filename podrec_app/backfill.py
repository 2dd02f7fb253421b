"""``podrec backfill``: Dagster's own partitioned backfill of a job, from the command line, to the end.

``dagster job backfill -m …`` launches one run per day through a code server it starts itself and
stops when it exits, which kills the runs it just launched. So this starts a long-lived code server
(``dagster api grpc``), points ``dagster job backfill`` at it and, when the instance queues runs (the
default ``QueuedRunCoordinator``, which also enforces the concurrency pools), a ``dagster-daemon``
to dequeue them; waits for every run of the backfill to finish; then stops both. The runs, their
checks and the backfill are in ``$DAGSTER_HOME`` like any launched from the UI.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from podrec_app.localinfra import free_port, stop_group

REPO = Path(__file__).resolve().parents[1]
MODULE = "podrec_assets.definitions"


@dataclass(frozen=True)
class BackfillRun:
    partition: str
    run_id: str
    status: str


def _dagster(*args: str, module: str = "dagster") -> list[str]:
    return [sys.executable, "-m", module, *args]


def _wait_healthy(port: int, server: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while subprocess.run(
        _dagster("api", "grpc-health-check", "-p", str(port)), capture_output=True
    ).returncode:
        if server.poll() is not None:
            raise RuntimeError(f"the Dagster code server exited with {server.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the Dagster code server did not answer within {timeout_s:.0f}s")
        time.sleep(2)


def _runs_are_queued() -> bool:
    from dagster import DagsterInstance
    from dagster._core.run_coordinator import QueuedRunCoordinator

    with DagsterInstance.get() as instance:
        return isinstance(instance.run_coordinator, QueuedRunCoordinator)


def launch(job: str, partition_args: list[str], workspace: Path, env: dict[str, str]) -> str:
    """Create the backfill; returns its id."""
    out = subprocess.run(
        _dagster("job", "backfill", "-w", str(workspace), "-j", job, *partition_args, "--noprompt"),
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    found = re.search(r"Launched backfill job `([^`]+)`", out.stdout)
    if out.returncode or not found:
        raise RuntimeError(f"dagster job backfill failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return found.group(1)


def wait(backfill_id: str, timeout_s: float, poll_s: float = 5.0) -> list[BackfillRun]:
    """Every run of the backfill once none is queued, starting or running."""
    from dagster import DagsterInstance
    from dagster._core.storage.dagster_run import FINISHED_STATUSES, RunsFilter

    deadline = time.monotonic() + timeout_s
    with DagsterInstance.get() as instance:
        while True:
            runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))
            if runs and all(r.status in FINISHED_STATUSES for r in runs):
                return sorted(
                    (
                        BackfillRun(r.tags.get("dagster/partition", ""), r.run_id, r.status.value)
                        for r in runs
                    ),
                    key=lambda r: r.partition,
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"backfill {backfill_id} still running after {timeout_s:.0f}s")
            time.sleep(poll_s)


def backfill(
    job: str,
    start: str | None = None,
    end: str | None = None,
    partitions: list[str] | None = None,
    timeout_s: float = 6 * 3600,
) -> tuple[str, list[BackfillRun]]:
    """Backfill ``job`` over ``start..end`` (or the listed partitions) and wait for the runs."""
    if "DAGSTER_HOME" not in os.environ:
        raise RuntimeError("set DAGSTER_HOME: the backfill and its runs are kept in that instance")
    partition_args = ["--partitions", ",".join(partitions)] if partitions else ["--from", start, "--to", end]
    port = free_port()
    quiet = {
        "cwd": REPO,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
        "start_new_session": True,
    }
    server = subprocess.Popen(
        _dagster("api", "grpc", "-m", MODULE, "-d", str(REPO), "-h", "127.0.0.1", "-p", str(port)), **quiet
    )
    daemon: subprocess.Popen | None = None
    try:
        _wait_healthy(port, server, timeout_s=180)
        with tempfile.TemporaryDirectory() as tmp:
            workspace = Path(tmp) / "workspace.yaml"
            workspace.write_text(
                "load_from:\n  - grpc_server:\n      host: 127.0.0.1\n"
                f"      port: {port}\n      location_name: {MODULE}\n"
            )
            if _runs_are_queued():
                daemon = subprocess.Popen(
                    _dagster("run", "-w", str(workspace), module="dagster._daemon"), **quiet
                )
            backfill_id = launch(job, partition_args, workspace, dict(os.environ))
            return backfill_id, wait(backfill_id, timeout_s)
    finally:
        for process in (daemon, server):
            if process is not None:
                stop_group(process, timeout_s=60)
