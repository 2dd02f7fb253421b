"""``podrec backfill``: Dagster's own partitioned backfill of a job, from the command line, to the end.

Only public interfaces: it starts ``dagster-webserver`` (which serves the code location) and
``dagster-daemon`` (which launches queued runs, honouring the concurrency pools), asks the GraphQL
API's ``launchPartitionBackfill`` — what the UI's *Launch backfill* button sends — for one run
per day (``forceSynchronousSubmission``: a day that fails can be re-run alone, even for jobs whose
assets could read a range in one run), and polls the runs tagged with the backfill's id until
every one has finished; then it stops both. The runs and their checks live in ``$DAGSTER_HOME``
like any launched from the UI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from dagster import DagsterInstance

from podrec_app.localinfra import free_port, running, stop_group

REPO = Path(__file__).resolve().parents[1]
LOCATION = "podrec"  # workspace.yaml's code location, as the UI names it
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on PartitionSetNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on RunConflict { message }
    ... on ConflictingExecutionParamsError { message }
    ... on PresetNotFoundError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on NoModeProvidedError { message }
  }
}
"""

RUNS = """
query Runs($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    __typename
    ... on Runs { results { runId status tags { key value } } }
    ... on PythonError { message }
  }
}
"""

PARTITIONS = """
query Partitions($selector: PipelineSelector!) {
  pipelineOrError(params: $selector) {
    __typename
    ... on Pipeline { partitionKeysOrError { __typename ... on PartitionKeys { partitionKeys } } }
    ... on PythonError { message }
    ... on PipelineNotFoundError { message }
  }
}
"""


class BackfillError(RuntimeError):
    """Dagster refused the backfill or did not finish it; the message says why."""


@dataclass(frozen=True)
class BackfillRun:
    partition: str
    run_id: str
    status: str


class GraphQL:
    def __init__(self, base_url: str) -> None:
        self.url = f"{base_url}/graphql"

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = requests.post(self.url, json={"query": query, "variables": variables}, timeout=120)
        body = response.json()
        if body.get("errors"):
            raise BackfillError(f"Dagster's GraphQL API refused the request: {body['errors'][0]['message']}")
        return body["data"]


def partitions_between(api: GraphQL, job: str, start: str, end: str) -> list[str]:
    """The job's partition keys from ``start`` to ``end``, as the code location defines them."""
    selector = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "pipelineName": job}
    found = api(PARTITIONS, selector=selector)["pipelineOrError"]
    if found["__typename"] != "Pipeline":
        raise BackfillError(
            f"no job {job!r} in the code location: {found.get('message', found['__typename'])}"
        )
    keys = found["partitionKeysOrError"].get("partitionKeys") or []
    chosen = [k for k in keys if start <= k <= end]
    if not chosen:
        raise BackfillError(f"job {job!r} has no partition between {start} and {end}")
    return chosen


def launch(api: GraphQL, job: str, partitions: list[str]) -> str:
    params = {
        "selector": {
            "partitionSetName": f"{job}_partition_set",
            "repositorySelector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__"},
        },
        "partitionNames": partitions,
        "fromFailure": False,
        "forceSynchronousSubmission": True,
        "title": f"podrec backfill {job}",
    }
    launched = api(LAUNCH, params=params)["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise BackfillError(f"Dagster did not launch the backfill ({launched['__typename']}): {launched}")
    return launched["backfillId"]


def wait(
    api: GraphQL, backfill_id: str, expected: int, timeout_s: float, poll_s: float = 5.0
) -> list[BackfillRun]:
    """Every run of the backfill, once each of its ``expected`` runs has finished."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = api(RUNS, id=backfill_id)["runsOrError"]
        if found["__typename"] != "Runs":
            raise BackfillError(f"backfill {backfill_id}: {found.get('message', found['__typename'])}")
        runs = [
            BackfillRun(
                {t["key"]: t["value"] for t in r["tags"]}.get("dagster/partition", ""),
                r["runId"],
                r["status"],
            )
            for r in found["results"]
        ]
        if len(runs) >= expected and all(r.status in FINISHED for r in runs):
            return sorted(runs, key=lambda r: r.partition)
        if time.monotonic() > deadline:
            raise BackfillError(f"backfill {backfill_id} still running after {timeout_s:.0f}s")
        time.sleep(poll_s)


def _tool(name: str) -> str:
    """Dagster's own command, from the environment podrec runs in."""
    return str(Path(sys.executable).with_name(name))


def backfill(
    job: str,
    start: str | None = None,
    end: str | None = None,
    partitions: list[str] | None = None,
    timeout_s: float = 6 * 3600,
) -> tuple[str, list[BackfillRun]]:
    """Backfill ``job`` over ``start..end`` (or the listed partitions) and wait for the runs."""
    if "DAGSTER_HOME" not in os.environ:
        raise BackfillError("set DAGSTER_HOME: the backfill and its runs are kept in that instance")
    # Create (or migrate) the instance's storage here, once: the webserver and the daemon would
    # otherwise race to create the same SQLite tables on a fresh $DAGSTER_HOME.
    with DagsterInstance.get() as instance:
        instance.get_runs(limit=1)
    port = free_port()
    quiet = {
        "cwd": REPO,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
        "start_new_session": True,
    }
    workspace = str(REPO / "workspace.yaml")
    base_url = f"http://127.0.0.1:{port}"
    webserver = [_tool("dagster-webserver"), "-w", workspace, "-h", "127.0.0.1", "-p", str(port)]
    daemon: subprocess.Popen | None = None
    try:
        with running(webserver, f"{base_url}/server_info", timeout_s=300):
            daemon = subprocess.Popen([_tool("dagster-daemon"), "run", "-w", workspace], **quiet)
            api = GraphQL(base_url)
            chosen = partitions or partitions_between(api, job, start or "", end or "9999")
            backfill_id = launch(api, job, chosen)
            return backfill_id, wait(api, backfill_id, len(chosen), timeout_s)
    finally:
        if daemon is not None:
            stop_group(daemon, timeout_s=60)
