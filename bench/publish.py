"""Publishing a day's lists to the serving store, beside a plain bulk load of the same documents.

Same run, same FerretDB: ``--users`` listeners x 10 items over ``--episodes`` episodes (a fifth with an
Italian variant) as a gold.recommendations frame, turned into documents by podrec.serving.documents
(timed on its own), then, alternately, ``--repeats`` times each:

- floor: a ``mongoimport``-style load of the same documents (lists, neighbours, episodes) — pymongo
  ``insert_many``, unordered, batches of 10,000 — into fresh collections of the same store;
- podrec: ``podrec.serving.publish.publish`` of those documents with ``settings.publish``: staging,
  the gate, the pointer switch and retention, i.e. everything the daily asset does after the frames.

The best run of each counts (the machine is shared; the spread is kept in ``runs``). The store is
FerretDB on SQLite, as ``podrec infra up`` runs it; ``--backend postgresql`` measures the same on
FerretDB over a local PostgreSQL (the cluster profile's store) into ``publish_postgresql.json``.

    .venv/bin/python bench/publish.py [--users 20000 --episodes 2000 --repeats 2 --backend sqlite]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymongo import MongoClient
from pymongo.database import Database

from podrec.recsys.ab import assign
from podrec.serving.documents import episode_docs, recommendation_docs, similar_docs, variants_by_canonical
from podrec.serving.publish import KINDS, publish
from podrec.settings import AbSettings, load_settings
from podrec_app import localinfra
from podrec_app.localinfra import free_port

RESULTS = Path(__file__).parent / "results"
FLOOR_BATCH = 10_000
STORES = {"sqlite": "SQLite backend, as `podrec infra up` runs it",
          "postgresql": "PostgreSQL backend, as the cluster profile runs it"}  # fmt: skip
K = 10


def frames(users: int, episodes: int, policy: AbSettings, seed: int = 0) -> dict[str, pd.DataFrame]:
    """gold.recommendations, silver.episodes and gold.episode_similarity as toPandas returns them."""
    rng = np.random.default_rng(seed)
    ids = [f"e{e}" for e in range(episodes)]
    italian = [f"e{e}-it" for e in range(0, episodes, 5)]
    catalog = pd.DataFrame({
        "episode_id": ids + italian, "canonical_episode_id": ids + [i.removesuffix("-it") for i in italian],
        "language": ["en"] * len(ids) + ["it"] * len(italian),
        "title": [f"Episode {i}" for i in ids] + [f"Puntata {i}" for i in italian],
        "feed_id": rng.integers(1, 200, len(ids) + len(italian)), "feed_title": "a show",
        "published_at": pd.Timestamp("2026-11-01", tz="UTC"), "duration_s": 1800.0,
    })  # fmt: skip
    user_ids = [f"user-{u:06d}" for u in range(users)] + ["__popular__/en", "__popular__/it"]
    arms = [assign(u, policy) for u in user_ids]
    picks = [ids[e] for e in np.argsort(rng.random((len(user_ids), episodes)), axis=1)[:, :K].ravel()]
    recs = pd.DataFrame({
        "user_id": np.repeat(user_ids, K), "rank": np.tile(np.arange(1, K + 1, dtype="int32"), len(user_ids)),
        "episode_id": picks, "canonical_episode_id": picks,
        "score": np.tile(1 / np.arange(1, K + 1), len(user_ids)), "als_score": rng.random(len(user_ids) * K),
        "content_score": np.nan, "policy": np.repeat([a[1] for a in arms], K), "reason": "you listened",
        "bucket": np.repeat([float(a[0]) for a in arms], K), "experiment_id": policy.experiment_id,
        "locale": np.repeat(rng.choice(["en-US", "it-IT"], len(user_ids)), K), "model_version": "bench",
        "rec_date": date(2026, 11, 20),
    })  # fmt: skip
    neighbours = np.argsort(rng.random((episodes, episodes)), axis=1)[:, :K]
    similarity = pd.DataFrame({
        "episode_id": np.repeat(ids, K), "neighbor_episode_id": [ids[e] for e in neighbours.ravel()],
        "similarity": rng.random(episodes * K), "rank": np.tile(np.arange(1, K + 1), episodes),
    })  # fmt: skip
    return {"recommendations": recs, "episodes": catalog, "similarity": similarity}


def floor(db: Database, docs: dict[str, list[dict[str, Any]]]) -> float:
    """Seconds to load the documents as a bulk import would: fresh collections, 10k unordered batches."""
    for kind in KINDS:
        db.drop_collection(f"floor_{kind}")
    started = time.perf_counter()
    for kind in KINDS:
        for i in range(0, len(docs[kind]), FLOOR_BATCH):
            db[f"floor_{kind}"].insert_many(docs[kind][i : i + FLOOR_BATCH], ordered=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--episodes", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each, alternating")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o711)  # PostgreSQL runs as its own user, which must reach its folder inside
        services, mongo, postgres = ["ferretdb"], {"database": "bench", "local_backend": args.backend}, {}
        if args.backend == "postgresql":
            # A login made up for this run only: FerretDB passes it on to PostgreSQL, which checks it.
            login = f"bench:{secrets.token_hex(12)}@"
            mongo["uri"] = f"mongodb://{login}127.0.0.1:{free_port()}/?authMechanism=PLAIN"
            services, postgres = ["postgres", "ferretdb"], {"port": free_port()}
        else:
            mongo["uri"] = f"mongodb://127.0.0.1:{free_port()}/"
        settings = load_settings(
            data={"dir": tmp}, lake={"uri": f"{tmp}/lake"}, mongo=mongo, postgres=postgres
        )
        tables = frames(args.users, args.episodes, settings.ab)
        started = time.perf_counter()
        variants = variants_by_canonical(tables["episodes"], {})
        docs = {
            "recommendations": list(recommendation_docs(tables["recommendations"], variants)),
            "similar": list(similar_docs(tables["similarity"], tables["episodes"], variants)),
            "episodes": list(episode_docs(tables["episodes"], variants)),
        }
        documents_s = time.perf_counter() - started
        lists = len(docs["recommendations"])
        localinfra.up(settings, only=services)
        # The run's own login is in this URI only (never in the environment): a client of its own.
        client = MongoClient(settings.mongo.uri.get_secret_value(), tz_aware=True)
        try:
            db = client[settings.mongo.database]
            server = db.command("buildInfo").get("ferretdbVersion")
            runs = []
            for repeat in range(args.repeats):
                floor_s = floor(db, docs)
                outcome = publish(
                    db, "2026-11-20", docs["recommendations"], docs["similar"], docs["episodes"], k=K,
                    version=f"v20261120T00000{repeat}Z-bench", batch_size=settings.publish.batch_size,
                    parallel_batches=settings.publish.parallel_batches,
                )  # fmt: skip
                assert outcome["passed"], outcome
                runs.append({"floor_seconds": floor_s, "publish_seconds": outcome["seconds"]})
        finally:
            client.close()
            localinfra.down(settings, only=services)

    best_floor = min(r["floor_seconds"] for r in runs)
    best = min((r["publish_seconds"] for r in runs), key=lambda s: s["total"])
    result = {
        "lists": lists, "episodes": len(docs["episodes"]), "neighbour_lists": len(docs["similar"]),
        "lists_per_s": lists / best["total"], "floor_lists_per_s": lists / best_floor,
        "ratio_to_floor": best_floor / best["total"], "seconds": best["total"], "floor_seconds": best_floor,
        "publish_seconds": best, "documents_seconds": documents_s,
        "documents_lists_per_s": lists / documents_s,
        "batch_size": settings.publish.batch_size, "parallel_batches": settings.publish.parallel_batches,
        "floor": f"pymongo insert_many, unordered, batches of {FLOOR_BATCH}, same documents, new collections",
        "store": f"FerretDB {server} ({STORES[args.backend]}), loopback", "runs": runs,
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
    }  # fmt: skip
    result["target_met"] = result["ratio_to_floor"] >= 0.8 and result["lists_per_s"] >= 5_000
    RESULTS.mkdir(exist_ok=True)
    name = "publish.json" if args.backend == "sqlite" else f"publish_{args.backend}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2))
    print(
        f"publish {result['lists_per_s']:8.0f} lists/s ({best['total']:.2f} s: stage {best['stage']:.2f}, "
        f"gate {best['gate']:.2f})  floor {result['floor_lists_per_s']:8.0f} lists/s ({best_floor:.2f} s)  "
        f"ratio {result['ratio_to_floor']:.2f}  documents {result['documents_lists_per_s']:.0f} lists/s"
    )


if __name__ == "__main__":
    main()
