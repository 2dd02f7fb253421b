"""The daily pipeline at scale: each asset's wall time and the process tree's peak memory, per day.

One run = one size (``--size S|M|L``: listeners x episodes of a synthetic catalog) and ``--days N``
simulated days. Each day: the episodes land (bronze → catalog → transcripts → embeddings →
similarity, incremental), the day's listening is simulated into Kafka, and one Dagster run
materializes ingestion and the ``daily`` job's selection (silver events, engagement, ALS, lists,
the MongoDB publish, the A/B analysis) — plus the evaluation on the first day, every
``--evaluate-every`` days and the last (it is weekly in production) — with every table's checks, on
the real local Kafka, FerretDB, Spark + Delta. Per-step times come from Dagster's event log.

    .venv/bin/python bench/scale.py --size M --days 1
    .venv/bin/python bench/scale.py --size M --days 14 --window 7

Results: ``bench/results/scale_<size>_<days>d.json`` (and ``scale.json``, the newest run), keys
``days[i].assets[name].seconds`` and ``peak_rss_mb`` (largest summed RSS of this process and its
children: the Spark JVM, its Python workers); ``days[i].persisted_rdds`` counts what the session
still caches after the day (it should not grow).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from dagster import AssetSelection, DagsterEventType, DagsterInstance, Definitions, define_asset_job

from podrec.ingest.producer import simulate_to_kafka
from podrec.settings import load_settings
from podrec_app import localinfra
from podrec_assets.daily import daily_selection
from podrec_assets.definitions import build_definitions

RESULTS = Path(__file__).parent / "results"
SIZES = {"S": (20_000, 2_000, 100), "M": (100_000, 10_000, 500), "L": (300_000, 30_000, 1_500)}
EPOCH = date(2026, 11, 1)  # the catalog and its content are built for this day before timing starts
FIRST_DAY = EPOCH + timedelta(days=1)
CONTENT = AssetSelection.assets(
    ["bronze", "episodes"],
    ["silver", "episodes"],
    ["silver", "transcripts"],
    ["gold", "episode_embeddings"],
    ["gold", "episode_similarity"],
)
EVALUATION = ["gold", "evaluation"]
SELECTION = (
    CONTENT
    | AssetSelection.assets(["bronze", "user_events"], ["bronze", "user_events_rejected"], EVALUATION)
    | daily_selection()
)


def _tree_rss(root: int) -> int:
    """Summed resident memory of ``root`` and all its descendants, from /proc (Linux)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier and pid not in tree}
        tree |= frontier
    total = 0
    for pid in tree:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        found = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(found.group(1)) * 1024 if found else 0
    return total


class PeakMemory:
    """Polls the summed RSS of this process and all its descendants; keeps the largest."""

    def __init__(self, every_s: float = 0.5) -> None:
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, args=(every_s,), daemon=True)

    def _poll(self, every_s: float) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, _tree_rss(os.getpid()))
            time.sleep(every_s)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def step_seconds(instance: DagsterInstance, run_id: str) -> dict[str, dict[str, float]]:
    """Each step's wall time (assets, and checks run as their own steps), from the run's event log."""
    started: dict[str, float] = {}
    out: dict[str, dict[str, float]] = {}
    kinds = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE}
    for record in instance.all_logs(run_id, of_type=kinds):
        event = record.get_dagster_event()
        if event.event_type == DagsterEventType.STEP_START:
            started[event.step_key] = record.timestamp
        else:
            name = event.step_key.replace("__", "/")
            out[name] = {"seconds": round(record.timestamp - started[event.step_key], 2)}
            if event.event_type == DagsterEventType.STEP_FAILURE:
                out[name]["failed"] = True
    return out


def persisted_rdds() -> int:
    """RDDs still cached in the day's Spark session after its run: a step that forgets to release
    what it cached shows here as a count that grows day by day (and as time that grows with it)."""
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    return context._jsc.getPersistentRDDs().size() if context is not None else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="S")
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument(
        "--window", type=int, default=28,
        help="days the ALS fit and the evaluation read (PODREC_ALS_WINDOW_DAYS, ..._EVALUATION_WINDOW_DAYS)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--driver-memory", default="6g", help="PODREC_SPARK_DRIVER_MEMORY for the run")
    parser.add_argument(
        "--evaluate-every", type=int, default=7,
        help="gold/evaluation on the first day, every N-th and the last (weekly in production); 0: never",
    )  # fmt: skip
    args = parser.parse_args()
    listeners, episodes, shows = SIZES[args.size]
    root = Path(tempfile.mkdtemp(prefix=f"podrec-scale-{args.size}-"))
    port = localinfra.free_port
    settings = load_settings(
        lake={"uri": str(root / "lake")}, data={"dir": str(root / "data")},
        kafka={"bootstrap": f"127.0.0.1:{port()}", "controller_port": port(), "events_topic": "scale.events"},
        mongo={"uri": f"mongodb://127.0.0.1:{port()}/", "database": "scale"},
        catalog="synthetic", synthetic={"episodes": episodes, "shows": shows, "seed": 7},
        partitions={"start": EPOCH}, als={"window_days": args.window},
        evaluation={"window_days": args.window},
        spark={"driver_memory": args.driver_memory, "shuffle_partitions": 4},
    )  # fmt: skip
    defs = build_definitions(settings)
    jobs = [
        define_asset_job("scale_setup", selection=CONTENT),
        define_asset_job("scale_day", selection=SELECTION),
        define_asset_job(
            "scale_day_without_evaluation", selection=SELECTION - AssetSelection.assets(EVALUATION)
        ),
    ]
    defs = Definitions.merge(defs, Definitions(jobs=jobs))
    job = defs.resolve_job_def("scale_day")
    daily_only = defs.resolve_job_def("scale_day_without_evaluation")
    resources = defs.resources
    days = [FIRST_DAY + timedelta(days=i) for i in range(args.days)]
    results = []
    localinfra.up(settings)
    try:
        with PeakMemory() as memory, DagsterInstance.ephemeral() as instance:
            # The catalog's history and its content (embeddings of every episode so far): set-up, not a day.
            setup_id = str(uuid.uuid4())
            setup_started = time.perf_counter()
            setup = defs.resolve_job_def("scale_setup").execute_in_process(
                instance=instance, partition_key=EPOCH.isoformat(), run_id=setup_id, raise_on_error=False
            )
            if not setup.success:
                raise SystemExit(f"set-up run {setup_id} failed")
            setup_report = {"seconds": round(time.perf_counter() - setup_started, 2),
                            "assets": step_seconds(instance, setup_id)}  # fmt: skip
            print(json.dumps({"setup": setup_report["seconds"]}), flush=True)
            for i, day in enumerate(days):
                started = time.perf_counter()
                catalog, _ = resources["episode_source"].snapshot(day)
                kafka = resources["kafka"]
                sent = simulate_to_kafka(
                    kafka.producer(), kafka.events_topic, catalog, [day], listeners, epoch=EPOCH,
                    seed=args.seed, progress=False,
                )  # fmt: skip
                simulate_s = time.perf_counter() - started
                run_id = str(uuid.uuid4())
                run_started = time.perf_counter()
                evaluated = args.evaluate_every > 0 and (i % args.evaluate_every == 0 or day == days[-1])
                # The time split needs two days of events: the first day is evaluated stratified only.
                protocols = ["stratified"] if i == 0 else ["time", "stratified"]
                result = (job if evaluated else daily_only).execute_in_process(
                    instance=instance,
                    partition_key=day.isoformat(),
                    run_id=run_id,
                    raise_on_error=False,
                    run_config={"ops": {"gold__evaluation": {"config": {"protocols": protocols}}}}
                    if evaluated
                    else None,
                )
                steps = step_seconds(instance, run_id)
                results.append({
                    "day": day.isoformat(), "events": sum(sent.values()),
                    "simulate_seconds": round(simulate_s, 2), "evaluated": evaluated,
                    "run_seconds": round(time.perf_counter() - run_started, 2), "success": result.success,
                    "persisted_rdds": persisted_rdds(), "assets": steps,
                })  # fmt: skip
                print(json.dumps({"day": day.isoformat(), "success": result.success,
                                  "run_seconds": results[-1]["run_seconds"],
                                  "rdds": results[-1]["persisted_rdds"],
                                  "mb": round(memory.peak_bytes / 2**20)}), flush=True)  # fmt: skip
                if not result.success:
                    break
    finally:
        localinfra.down(settings)
    report = {
        "size": args.size, "listeners": listeners, "episodes": episodes, "shows": shows,
        "window_days": args.window, "cores": os.cpu_count(), "peak_rss_mb": round(memory.peak_bytes / 2**20),
        "setup": setup_report, "days": results,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(report, indent=2)
    (RESULTS / f"scale_{args.size}_{args.days}d.json").write_text(text)
    (RESULTS / "scale.json").write_text(text)
    print(
        f"peak RSS {report['peak_rss_mb']} MB; written to {RESULTS / f'scale_{args.size}_{args.days}d.json'}"
    )


if __name__ == "__main__":
    main()
