"""What a person sees from every ``podrec`` command in a broken world — Kafka down, the serving store
down, an empty lake, bad input — one line each, as a markdown table (the closing note of issue 18).

Not a test (nothing is asserted; tests/integration/test_cli_failures.py asserts the rules): a report
to read. Needs the local services up (``podrec infra up``) for the "empty lake" and "bad input"
columns; the "down" columns point at ports where nothing listens.

    python -m tests.faults.cli_matrix > cli_matrix.md
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from podrec_app.localinfra import free_port

TIMEOUT_S = 45
# Each command with an ordinary call and a call with bad input; servers (serve, dashboard,
# screenshots) are left out: they answer with HTTP errors, tested in tests/integration.
COMMANDS: dict[str, tuple[list[str], list[str]]] = {
    "infra status": (["infra", "status"], ["infra", "status", "--nope"]),
    "simulate": (["simulate", "--days", "1", "--users", "5"], ["simulate", "--days", "0"]),
    "ingest": (["ingest"], ["ingest", "--replay", "yesterday"]),
    "import-events": (["import-events", "ok.csv"], ["import-events", "garbled.csv"]),
    "evaluate": (["evaluate", "--no-ingest"], ["evaluate", "--k", "0"]),
    "tune": (["tune", "--no-ingest"], ["tune", "--alpha", "-1"]),
    "publish status": (["publish", "status"], ["publish", "status", "--json", "extra"]),
    "publish rollback": (["publish", "rollback"], ["publish", "rollback", "no-such-version"]),
    "forget": (["forget", "someone"], ["forget", " "]),
    "tables": (["tables"], ["tables", "--format", "xml"]),
    "ab report": (["ab", "report"], ["ab", "report", "--json", "extra"]),
    "loop": (["loop", "--days", "1", "--users", "5"], ["loop", "--days", "0"]),
    "backfill": (["backfill", "daily", "--from", "2026-11-01", "--to", "2026-11-02"],
                 ["backfill", "daily", "--from", "2026-11-02", "--to", "2026-11-01"]),
    "sample-audio": (["sample-audio"], ["sample-audio", "extra"]),
    "demo": (["demo"], ["demo", "--date", "tomorrow"]),
}  # fmt: skip


def run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    began = time.perf_counter()
    # Its own process group, so a command still running at the timeout is stopped with its children
    # (Spark's JVM, a Dagster webserver), not orphaned.
    proc = subprocess.Popen([sys.executable, "-m", "podrec_app.cli", *args], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return f"still running after {TIMEOUT_S} s (stopped there)"
    seconds = time.perf_counter() - began
    lines = (stderr.strip() or stdout.strip()).splitlines()
    shown = lines[-1] if proc.returncode == 0 and lines else (lines[0] if lines else "")
    if proc.returncode != 0 and len(lines) > 1:
        shown += f" (+{len(lines) - 1} lines)"
    return f"exit {proc.returncode}, {seconds:.0f} s: {shown.replace('|', '/')[:220]}"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="podrec-cli-matrix-"))
    (work / "ok.csv").write_text("user,item,ts,event_type\na,x,2026-11-20T08:00:00Z,play\n")
    (work / "garbled.csv").write_bytes(b"\x00\x01\x02 garbled \xff\xfe")
    base = os.environ | {
        "PYTHONWARNINGS": "ignore",
        "PODREC_LAKE_URI": str(work / "lake"),
        "PODREC_KAFKA_EVENTS_TOPIC": f"matrix-{uuid.uuid4().hex[:8]}",
        "PODREC_KAFKA_CONSUMER_GROUP": f"matrix-{uuid.uuid4().hex[:8]}",
        "PODREC_MONGO_DATABASE": f"matrix_{uuid.uuid4().hex[:8]}",
    }
    worlds = {
        "Kafka down": base | {"PODREC_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"},
        "store down": base | {"PODREC_MONGO_URI": f"mongodb://127.0.0.1:{free_port()}/"},
        "empty lake": base,
    }
    print("| command | " + " | ".join([*worlds, "bad input"]) + " |")
    print("| --- " * (len(worlds) + 2) + "|")
    for name, (ordinary, bad) in COMMANDS.items():
        cells = [run(ordinary, env, work) for env in worlds.values()]
        cells.append(f"`{' '.join(bad)}` → " + run(bad, base, work))
        print(f"| `podrec {name}` | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
