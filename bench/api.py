"""The recommendations endpoint under load, beside a plain pymongo ``find_one`` loop (the floor).

Same run, same FerretDB, same collection: a synthetic version (``--users`` listeners x 10 items over
``--episodes`` episodes, a fifth of them with an Italian variant) is published through
podrec.serving.publish; then

- floor: ``find_one({"_id": user_id})`` on that version's collection (the API's one read), in a loop;
- API: ``podrec serve`` (uvicorn, ``--workers``) on loopback, driven by bench/loadgen (Go): first one
  open-loop pass over every URL at ``--rate`` req/s with the API's cache empty (what follows a
  publish), then, warm, an open loop at ``--rate`` and at half of it (latency from the scheduled
  send time), closed loops one by one and at ``--concurrency`` (the most it sustains), an open loop
  offered at that most, and ``wrk -t2 -c16 -d15s --latency`` over the same URLs, flat out and with
  each connection pausing so the 16 hold near ``--rate`` (skipped, with a note, without wrk).
  Requests mix known and unknown listeners and locales.

Every run above logs its impressions to a live Kafka broker, as in production (a running one: before
the API starts, the bench writes ``WARM_RECORDS`` records to the topic, so the broker's own start-up —
topic creation, its JIT — is not billed to the API's first pass). Then the broker is
stopped and the open loop at ``--rate`` runs again (``api_open_loop_kafka_down``): impressions are
dropped and counted, and the ratio of its p99 to the broker-up one says whether requests noticed.

    .venv/bin/python bench/api.py [--users 20000 --rate 500 --seconds 20 --workers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from podrec.recsys.ab import assign
from podrec.serving.publish import active_version, collection, publish
from podrec.settings import AbSettings, load_settings
from podrec_app import localinfra
from podrec_app.localinfra import free_port
from podrec_app.screenshots import running
from resources import build_resources

BENCH = Path(__file__).parent
RESULTS = BENCH / "results"


def version_docs(users: int, episodes: int, policy: AbSettings, seed: int = 0) -> tuple[list, list, list]:
    """Documents shaped as podrec.serving.documents writes them: keyed by _id, items carrying variants."""
    rng = random.Random(seed)
    variants = {}
    for e in range(episodes):
        variants[f"e{e}"] = [{"episode_id": f"e{e}", "language": "en", "title": f"Episode {e}", "plays": 10}]
        if e % 5 == 0:
            variants[f"e{e}"].append(
                {"episode_id": f"e{e}-it", "language": "it", "title": f"Puntata {e}", "plays": 5}
            )
    lists = []
    for u in range(users):
        user_id = f"user-{u:06d}"
        bucket, arm = assign(user_id, policy)
        picks = rng.sample(range(episodes), 10)
        lists.append({
            "_id": user_id, "user_id": user_id, "fallback": False, "language": None,
            "locale": rng.choice(["en-US", "it-IT"]), "policy": arm, "bucket": bucket,
            "experiment_id": policy.experiment_id, "model_version": "bench", "rec_date": "2026-11-20",
            "items": [{"rank": r + 1, "episode_id": f"e{e}", "canonical_episode_id": f"e{e}",
                       "score": 1 / (r + 1), "als_score": None, "content_score": None, "reason": "bench",
                       "variants": variants[f"e{e}"]}
                      for r, e in enumerate(picks)],
        })  # fmt: skip
    for language in ("en", "it"):
        key = f"__popular__/{language}"
        lists.append({**lists[0], "_id": key, "user_id": key, "fallback": True, "policy": "popular"})
    docs = [{"_id": v["episode_id"], "episode_id": v["episode_id"], "canonical_episode_id": c,
             "language": v["language"], "title": v["title"], "variants": vs}
            for c, vs in variants.items() for v in vs]  # fmt: skip
    return lists, [{"_id": "e0", "episode_id": "e0", "items": []}], docs


def floor(coll, user_ids: list[str], n: int, threads: int = 1) -> dict:
    """``threads`` loops of ``find_one`` by _id, back to back: what the store itself answers."""
    latencies: list[float] = []

    def loop(offset: int) -> None:
        for i in range(offset, n, threads):
            start = time.perf_counter()
            coll.find_one({"_id": user_ids[i % len(user_ids)]})
            latencies.append((time.perf_counter() - start) * 1000)

    begin = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(loop, range(threads)))
    elapsed = time.perf_counter() - begin
    q = np.percentile(latencies, [50, 90, 99, 100])
    return {"mode": f"pymongo find_one, {threads} thread(s)", "requests": n, "achieved_rate": n / elapsed,
            "p50_ms": q[0], "p90_ms": q[1], "p99_ms": q[2], "max_ms": q[3]}  # fmt: skip


WARM_RECORDS = 50_000


def warm_broker(bootstrap: str, topic: str, n: int = WARM_RECORDS) -> None:
    """Create ``topic`` and write ``n`` impression-sized records to it: the broker a long-running API
    meets has its topic and has compiled its hot paths."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    items = [{"episode_id": f"e{r}", "rank": r + 1} for r in range(10)]
    record = json.dumps({"impression_id": "warm-up", "items": items}).encode()
    for i in range(n):
        producer.produce(topic, record, key=str(i).encode())
        if i % 10_000 == 0:
            producer.flush()
    if producer.flush(30):
        raise RuntimeError(f"the broker at {bootstrap} did not take the warm-up records")


def impressions(api: str) -> dict[str, int]:
    """The API worker's impression counts (``/metrics``): logged, delivered, dropped, undelivered…"""
    with urllib.request.urlopen(f"{api}/metrics", timeout=5) as response:
        return json.load(response)["impressions"]


def since(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Counters' growth between two ``/metrics`` reads (gauges such as ``waiting`` as they end)."""
    return {k: v - before.get(k, 0) if k in ("logged", "delivered", "dropped", "undelivered") else v
            for k, v in after.items()}  # fmt: skip


def build_loadgen(into: Path) -> Path:
    binary = into / "podrec-loadgen"
    subprocess.run(["go", "build", "-o", str(binary), "."], cwd=BENCH / "loadgen", check=True)
    return binary


def loadgen(binary: Path, urls: Path, *args: str) -> dict:
    out = subprocess.run([str(binary), "-urls", str(urls), *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


# wrk runs one Lua state per thread; each walks the URL list from its own offset. With a pause, each
# connection waits that long between requests, which holds 16 connections near a chosen rate.
WRK_SCRIPT = """
local paths, i = {}, 0
for line in io.lines(os.getenv("PODREC_BENCH_URLS")) do
  paths[#paths + 1] = line:match("^https?://[^/]+(/.*)$")
end
function setup(thread) thread:set("offset", math.random(#paths)) end
function request() i = i + 1; return wrk.format("GET", paths[(offset + i) % #paths + 1]) end
local pause = tonumber(os.getenv("PODREC_BENCH_PAUSE_MS") or "0")
if pause > 0 then function delay() return pause end end
"""
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(urls: Path, api: str, seconds: int, rate: float | None = None) -> dict:
    """``wrk -t2 -c16 -d{seconds}s --latency`` over the URL list, flat out or, with ``rate``, each
    connection pausing 16/rate s between requests; a note instead where wrk is missing."""
    binary = shutil.which("wrk")
    if binary is None:
        return {"skipped": "wrk is not installed (apt-get install wrk; infra/setup.sh installs it)"}
    script = urls.with_suffix(".lua")
    script.write_text(WRK_SCRIPT)
    command = [binary, "-t2", "-c16", f"-d{seconds}s", "--latency", "-s", str(script), api]
    pause_ms = 16_000 / rate if rate else 0
    env = {**os.environ, "PODREC_BENCH_URLS": str(urls), "PODREC_BENCH_PAUSE_MS": f"{pause_ms:.0f}"}
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * _UNITS_MS[unit]

    # the thread-stats line: Latency  avg  stdev  max  +/- stdev
    max_value, max_unit = re.search(r"^\s*Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", out, re.M).groups()
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "mode": "wrk -t2 -c16 --latency (closed loop"
        + (f", {pause_ms:.0f} ms pause per connection between requests)" if rate else ")"),
        "seconds": seconds,
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "achieved_rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": ms("50%"), "p75_ms": ms("75%"), "p90_ms": ms("90%"), "p99_ms": ms("99%"),
        "max_ms": float(max_value) * _UNITS_MS[max_unit],
        "errors": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else None,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--episodes", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8, help="closed-loop connections")
    parser.add_argument(
        "--workers", type=int, default=None, help="uvicorn workers (default: settings.api.workers)"
    )
    parser.add_argument("--wrk-seconds", type=int, default=15)
    args = parser.parse_args()
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory() as tmp:
        mongo = {"uri": f"mongodb://127.0.0.1:{free_port()}/", "database": "bench"}
        kafka = {"bootstrap": f"127.0.0.1:{free_port()}", "controller_port": free_port(),
                 "impressions_topic": "bench.impressions"}  # fmt: skip
        settings = load_settings(data={"dir": tmp}, lake={"uri": f"{tmp}/lake"}, mongo=mongo, kafka=kafka)
        workers = args.workers or settings.api.workers
        localinfra.up(settings, only=["ferretdb", "kafka"])
        try:
            db = build_resources(settings)["mongo"].db()
            server = db.command("buildInfo").get("ferretdbVersion")
            policy = settings.ab
            lists, similar, episodes = version_docs(args.users, args.episodes, policy)
            started = time.perf_counter()
            outcome = publish(db, "2026-11-20", lists, similar, episodes, k=10)
            publish_s = time.perf_counter() - started
            assert outcome["passed"], outcome
            coll = db[collection("recommendations", active_version(db))]
            known = [f"user-{u:06d}" for u in range(args.users)]
            rng = random.Random(1)
            rng.shuffle(known)
            base = floor(coll, known, 5_000)
            base_parallel = floor(coll, known, 5_000, threads=args.concurrency)

            warm_broker(settings.kafka.bootstrap, settings.kafka.impressions_topic)
            port = free_port()
            api = f"http://127.0.0.1:{port}"
            urls = Path(tmp) / "urls.txt"
            lines = []
            for i, user in enumerate(known[:10_000]):
                who = user if i % 10 else f"new-listener-{i}"  # one request in ten: an unknown listener
                locale = ("", "?locale=it-IT", "?locale=de-DE&k=5")[i % 3]
                lines.append(f"{api}/users/{who}/recommendations{locale}")
            urls.write_text("\n".join(lines))
            env = {**os.environ, "PODREC_MONGO_URI": settings.mongo.uri.get_secret_value(),
                   "PODREC_MONGO_DATABASE": "bench", "PODREC_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
                   "PODREC_KAFKA_IMPRESSIONS_TOPIC": settings.kafka.impressions_topic}  # fmt: skip
            serve = [
                sys.executable,
                "-m",
                "podrec_app.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ]
            generator = build_loadgen(Path(tmp))
            with running(serve, f"{api}/ready", env=env):
                pass_s = f"{len(lines) / args.rate:.1f}s"  # every URL once, each worker's cache empty
                cold = loadgen(generator, urls, "-rate", str(args.rate), "-duration", pass_s, "-warmup", "0s")
                open_loop = loadgen(generator, urls, "-rate", str(args.rate), "-duration", f"{args.seconds}s")
                half_rate = loadgen(
                    generator, urls, "-rate", str(args.rate / 2), "-duration", f"{args.seconds}s"
                )
                short = f"{max(args.seconds // 2, 5)}s"
                one_by_one = loadgen(generator, urls, "-rate", "0", "-concurrency", "1", "-duration", short)
                closed_loop = loadgen(
                    generator, urls, "-rate", "0", "-concurrency", str(args.concurrency), "-duration", short
                )
                at_max = loadgen(
                    generator,
                    urls,
                    "-rate",
                    f"{closed_loop['achieved_rate']:.0f}",
                    "-duration",
                    f"{args.seconds}s",
                )
                with_wrk = wrk(urls, api, args.wrk_seconds)
                wrk_at_rate = wrk(urls, api, args.wrk_seconds, rate=args.rate)
                kafka_up = impressions(api)
                localinfra.down(settings, only=["kafka"])
                before_down = impressions(api)
                kafka_down = loadgen(
                    generator, urls, "-rate", str(args.rate), "-duration", f"{args.seconds}s"
                )
                after_down = impressions(api)
        finally:
            localinfra.down(settings, only=["ferretdb", "kafka"])

    result = {
        "users": args.users, "episodes": args.episodes, "publish_seconds": publish_s, "floor": base,
        "floor_parallel": base_parallel, "api_open_loop": open_loop, "api_open_loop_half_rate": half_rate,
        "api_one_by_one": one_by_one, "api_closed_loop": closed_loop,
        "ratio_p50_api_open_vs_floor": open_loop["p50_ms"] / base["p50_ms"],
        "ratio_p99_api_open_vs_floor": open_loop["p99_ms"] / base["p99_ms"],
        "ratio_p50_api_one_by_one_vs_floor": one_by_one["p50_ms"] / base["p50_ms"],
        "ratio_rate_api_closed_vs_floor_parallel": (
            closed_loop["achieved_rate"] / base_parallel["achieved_rate"]
        ),
        "target_met": open_loop["p99_ms"] < 10 and open_loop["achieved_rate"] >= 0.98 * args.rate
        and open_loop["errors"] == 0 and closed_loop["achieved_rate"] >= 1_000,
        "api_open_loop_cold_cache": cold, "api_open_loop_at_max": at_max, "wrk": with_wrk,
        "wrk_at_rate": wrk_at_rate,
        "ratio_rate_api_max_vs_floor": closed_loop["achieved_rate"] / base["achieved_rate"],
        "api_open_loop_kafka_down": kafka_down,
        "ratio_p99_kafka_down_over_up": kafka_down["p99_ms"] / open_loop["p99_ms"],
        "ratio_p50_kafka_down_over_up": kafka_down["p50_ms"] / open_loop["p50_ms"],
        "impressions_kafka_up": kafka_up, "impressions_kafka_down": since(before_down, after_down),
        "workers": workers, "cache_mb": settings.api.cache_mb,
        "version_cache_s": settings.api.version_cache_s,
        "store": f"FerretDB {server} (SQLite backend, as `podrec infra up` runs it), loopback",
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "api.json").write_text(json.dumps(result, indent=2))
    names = ("floor", "floor_parallel", "api_open_loop_cold_cache", "api_one_by_one", "api_closed_loop",
             "api_open_loop", "api_open_loop_half_rate", "api_open_loop_at_max", "wrk",
             "wrk_at_rate", "api_open_loop_kafka_down")  # fmt: skip
    for name in names:
        r = result[name]
        if "skipped" in r:
            print(f"{name:24s} skipped: {r['skipped']}")
            continue
        print(
            f"{name:24s} {r['achieved_rate']:8.1f} req/s  p50 {r['p50_ms']:6.2f} ms  "
            f"p99 {r['p99_ms']:7.2f} ms  max {r['max_ms']:7.2f} ms  errors {r.get('errors', 0)}"
        )
    print("impressions with Kafka up:", kafka_up, "| while it was down:", result["impressions_kafka_down"])
    print(json.dumps({k: v for k, v in result.items() if k.startswith(("ratio", "target"))}))


if __name__ == "__main__":
    main()
