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

The runs above are the API as ``podrec serve`` runs it by default: bearer tokens (the load carries a
service's, as a backend would), rate limits, the JSON access log (to a file) and Prometheus metrics in
multi-process mode. A second server on the same store and broker runs with all four off
(``PODREC_API_AUTH=off``, rates 0, ``PODREC_API_ACCESS_LOG``/``_METRICS`` false), and the cold pass,
the open loop at ``--rate``, the closed loops and both wrk runs are repeated against it, each right
after its twin, into ``off`` — with the on/off ratios (``ratio_*_on_over_off``). A Prometheus scrape
before and after the cold pass (``prometheus_cold_pass``) shows its request count matching the
generator's.

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


def get(url: str, headers: dict[str, str]) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
        return response.read()


def impressions(api: str, headers: dict[str, str]) -> dict[str, int]:
    """The API worker's impression counts (``/metrics/impressions``): logged, delivered, dropped…"""
    return json.loads(get(f"{api}/metrics/impressions", headers))["impressions"]


LIST_ROUTE = "/users/{user_id}/recommendations"


def scraped_counts(api: str, headers: dict[str, str]) -> dict[str, float]:
    """From a Prometheus scrape of every worker: requests of the list route, and impressions logged."""
    from prometheus_client.parser import text_string_to_metric_families

    counts = {"list_requests": 0.0, "impressions_logged": 0.0}
    for family in text_string_to_metric_families(get(f"{api}/metrics", headers).decode()):
        for sample in family.samples:
            if (
                sample.name == "podrec_api_request_duration_seconds_count"
                and sample.labels["route"] == LIST_ROUTE
            ):
                counts["list_requests"] += sample.value
            elif sample.name == "podrec_api_impressions_total" and sample.labels["outcome"] == "logged":
                counts["impressions_logged"] += sample.value
    return counts


def scrape_excerpt(api: str, headers: dict[str, str]) -> list[str]:
    """The scrape's lines of the list route's answers and of the impressions, as docs/benchmarks.md shows."""
    text = get(f"{api}/metrics", headers).decode()
    wanted = (
        f'route="{LIST_ROUTE}",status="200"',
        "podrec_api_impressions",
        "podrec_api_cache_lookups_total",
    )
    return [line for line in text.splitlines() if any(w in line for w in wanted) and not line.startswith("#")]


def since(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Counters' growth between two ``/metrics`` reads (gauges such as ``waiting`` as they end)."""
    return {k: v - before.get(k, 0) if k in ("logged", "delivered", "dropped", "undelivered") else v
            for k, v in after.items()}  # fmt: skip


def service_token(env: dict[str, str]) -> dict[str, str]:
    """A backend's token, minted as a developer mints one (``podrec token bench --service``), with the
    key the server of ``env`` checks it with."""
    command = [sys.executable, "-m", "podrec_app.cli", "token", "bench", "--service"]
    minted = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout.strip()
    return {"Authorization": f"Bearer {minted}"}


def build_loadgen(into: Path) -> Path:
    binary = into / "podrec-loadgen"
    subprocess.run(["go", "build", "-o", str(binary), "."], cwd=BENCH / "loadgen", check=True)
    return binary


def loadgen(binary: Path, urls: Path, *args: str, header: str = "") -> dict:
    command = [str(binary), "-urls", str(urls), "-header", header, *args]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


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


def wrk(urls: Path, api: str, seconds: int, rate: float | None = None, header: str = "") -> dict:
    """``wrk -t2 -c16 -d{seconds}s --latency`` over the URL list, flat out or, with ``rate``, each
    connection pausing 16/rate s between requests (wrk2 is not packaged here: the pause in the Lua script
    is the pacing); ``header`` (a bearer token) on every request; a note instead where wrk is missing."""
    binary = shutil.which("wrk")
    if binary is None:
        return {"skipped": "wrk is not installed (apt-get install wrk; infra/setup.sh installs it)"}
    script = urls.with_suffix(".lua")
    script.write_text(WRK_SCRIPT)
    command = [binary, "-t2", "-c16", f"-d{seconds}s", "--latency", "-s", str(script), api]
    command += ["-H", header] if header else []
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


# The second server: authentication, rate limits, access log and metrics all off.
OFF = {
    "PODREC_API_AUTH": "off", "PODREC_API_RATE_LISTENER_PER_S": "0", "PODREC_API_RATE_SERVICE_PER_S": "0",
    "PODREC_API_RATE_ADDRESS_PER_S": "0", "PODREC_API_ACCESS_LOG": "false", "PODREC_API_METRICS": "false",
}  # fmt: skip


def on_over_off(on: dict[str, dict], off: dict[str, dict]) -> dict[str, float | None]:
    """Each run with the features on over its twin with them off: p50 and p99 latency, and rate."""
    ratios: dict[str, float | None] = {}
    for name, run in on.items():
        twin = off[name]
        for key in ("p50_ms", "p99_ms", "achieved_rate"):
            label = f"ratio_{key.removesuffix('_ms').replace('achieved_', '')}_{name}_on_over_off"
            ratios[label] = run[key] / twin[key] if key in run and twin.get(key) else None
    return ratios


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
            port, port_off = free_port(), free_port()
            api, api_off = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port_off}"
            paths = []
            for i, user in enumerate(known[:10_000]):
                who = user if i % 10 else f"new-listener-{i}"  # one request in ten: an unknown listener
                locale = ("", "?locale=it-IT", "?locale=de-DE&k=5")[i % 3]
                paths.append(f"/users/{who}/recommendations{locale}")
            urls, urls_off = Path(tmp) / "urls.txt", Path(tmp) / "urls-off.txt"
            urls.write_text("\n".join(api + path for path in paths))
            urls_off.write_text("\n".join(api_off + path for path in paths))
            env = {**os.environ, "PODREC_MONGO_URI": settings.mongo.uri.get_secret_value(),
                   "PODREC_MONGO_DATABASE": "bench", "PODREC_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
                   "PODREC_KAFKA_IMPRESSIONS_TOPIC": settings.kafka.impressions_topic,
                   "PODREC_DATA_DIR": tmp}  # fmt: skip
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)
            env_off = {**env, **OFF}
            token = service_token(env)
            header = f"Authorization: {token['Authorization']}"

            def serve(at: int) -> list[str]:
                command = [sys.executable, "-m", "podrec_app.cli", "serve"]
                return [*command, "--port", str(at), "--workers", str(workers)]

            generator = build_loadgen(Path(tmp))
            off: dict = {}

            def load(on: bool, *options: str) -> dict:
                return loadgen(generator, urls if on else urls_off, *options, header=header if on else "")

            def twice(name: str, *options: str) -> dict:
                """A run against the server with everything on, then at once its twin against the one off."""
                result = load(True, *options)
                off[name] = load(False, *options)
                return result

            rate, seconds = str(args.rate), f"{args.seconds}s"
            short = f"{max(args.seconds // 2, 5)}s"
            every_url_once = f"{len(paths) / args.rate:.1f}s"  # each worker's cache empty
            with (
                running(serve(port), f"{api}/ready", env=env),
                running(serve(port_off), f"{api_off}/ready", env=env_off),
            ):
                before_cold = scraped_counts(api, token)
                cold = load(True, "-rate", rate, "-duration", every_url_once, "-warmup", "0s")
                time.sleep(1.5)  # each worker copies its impression counts into Prometheus every second
                after_cold = scraped_counts(api, token)
                off["api_open_loop_cold_cache"] = load(
                    False, "-rate", rate, "-duration", every_url_once, "-warmup", "0s"
                )
                open_loop = twice("api_open_loop", "-rate", rate, "-duration", seconds)
                half_rate = load(True, "-rate", str(args.rate / 2), "-duration", seconds)
                one_by_one = twice("api_one_by_one", "-rate", "0", "-concurrency", "1", "-duration", short)
                concurrency = str(args.concurrency)
                closed_loop = twice(
                    "api_closed_loop", "-rate", "0", "-concurrency", concurrency, "-duration", short
                )
                at_max = load(True, "-rate", f"{closed_loop['achieved_rate']:.0f}", "-duration", seconds)
                with_wrk = wrk(urls, api, args.wrk_seconds, header=header)
                off["wrk"] = wrk(urls, api_off, args.wrk_seconds)
                wrk_at_rate = wrk(urls, api, args.wrk_seconds, rate=args.rate, header=header)
                off["wrk_at_rate"] = wrk(urls, api_off, args.wrk_seconds, rate=args.rate)
                time.sleep(1.5)
                excerpt = scrape_excerpt(api, token)
                kafka_up = impressions(api, token)
                localinfra.down(settings, only=["kafka"])
                before_down = impressions(api, token)
                kafka_down = load(True, "-rate", rate, "-duration", seconds)
                after_down = impressions(api, token)
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
        "api_features": {
            "on": "the defaults of `podrec serve`: HS256 bearer tokens (a service's, cached after its first "
                  "check), rate limits, JSON access log to a file, Prometheus metrics in multi-process mode",
            "off": ", ".join(f"{k}={v}" for k, v in OFF.items()),
        },
        "off": off,
        "target_met_off": off["api_open_loop"]["p99_ms"] < 10
        and off["api_open_loop"]["achieved_rate"] >= 0.98 * args.rate and off["api_open_loop"]["errors"] == 0
        and off["api_closed_loop"]["achieved_rate"] >= 1_000,
        **on_over_off(
            {"api_open_loop": open_loop, "api_one_by_one": one_by_one, "api_closed_loop": closed_loop,
             "wrk": with_wrk, "wrk_at_rate": wrk_at_rate}, off,
        ),
        "prometheus_cold_pass": {
            "loadgen_requests": cold["requests"],
            "scraped_list_requests": after_cold["list_requests"] - before_cold["list_requests"],
            "scraped_impressions_logged": after_cold["impressions_logged"]
            - before_cold["impressions_logged"],
        },
        "prometheus_excerpt_after_runs": excerpt,
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
    rows = [(name, result[name]) for name in names] + [(f"off.{name}", r) for name, r in off.items()]
    for name, r in rows:
        if "skipped" in r:
            print(f"{name:28s} skipped: {r['skipped']}")
            continue
        print(
            f"{name:28s} {r['achieved_rate']:8.1f} req/s  p50 {r['p50_ms']:6.2f} ms  "
            f"p99 {r['p99_ms']:7.2f} ms  max {r['max_ms']:7.2f} ms  errors {r.get('errors', 0)}"
        )
    print("impressions with Kafka up:", kafka_up, "| while it was down:", result["impressions_kafka_down"])
    print(
        json.dumps({k: v for k, v in result.items() if k.startswith(("ratio", "target", "prometheus_cold"))})
    )


if __name__ == "__main__":
    main()
