"""Fuzz both record validators with generated hostile records; count what raised (must be 0).

    python bench/fuzz_validators.py [--records 1000000] [--spark 100000] [--seed 7]

Each record is one of: a simulated event or a served list as the API writes it, either as is or
mutated (cut short, bytes flipped, invalid UTF-8, NUL, brackets or a lone-surrogate escape inserted, a
field replaced by a hostile value: a timestamp at the calendar's edges, a number beyond a double, NaN,
an odd or reserved id, a deep or wide JSON value), JSON of random shape, or random bytes. Every record
goes through ``events.validate`` and ``impressions.validate`` (the Python validators, with the
default limits; impressions signed with a key of the run's, as the API signs them, or forged);
``--spark`` of them also through Spark's validation of events
(``spark_validation.decide`` → ``word``, the rest in Python), whose every decision must equal
``events.validate``'s. Results: bench/results/fuzz_validators.json (keys kept stable).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from contextlib import suppress
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from podrec.ingest import events, impressions
from podrec.ingest.impressions import ImpressionRules, sign
from podrec.recsys.ab import assign
from podrec.settings import AbSettings

RESULTS = Path(__file__).parent / "results" / "fuzz_validators.json"
RULES = ImpressionRules(key=b"fuzz-signing-key-of-32-bytes-or-more", ab=AbSettings(), min_propensity=0.001)
validate_impression = partial(impressions.validate, rules=RULES)
RECEIVED = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TIMESTAMPS = [
    "2026-11-23T08:15:00Z", "9999-12-31 23:00:00-05:00", "9999-12-31T23:00:00-05:00",
    "0001-01-01T00:00:00+23:59",
    "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-11-23T24:00:00Z",
    "2026-11-23T08:15:00.1234567Z", "2026-11-23T08:15:00z", "2026-11-23", "", "\x00", "2262-04-12T00:00:00Z",
    "2026-11-23T08:15:00+14:00", "2026-11-23T08:15:00-23:59", "20261123T081500Z", "2027-01-01T00:00:00Z",
]  # fmt: skip
IDS = [
    "u1",
    "__popular__/en",
    "__forgotten__/1",
    "../../etc",
    "$where",
    "u 1",
    "🎧",
    "u1\n",
    "x" * 129,
    "",
    "a" * 201,
]
NUMBERS: list[Any] = [
    0,
    -1,
    1.5,
    10**400,
    -(10**400),
    2**63,
    float("nan"),
    float("inf"),
    -0.0,
    5e-324,
    True,
    "7",
]


def hostile_value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.random()
    if pick < 0.2:
        return rng.choice(TIMESTAMPS)
    if pick < 0.4:
        return rng.choice(IDS)
    if pick < 0.6:
        return rng.choice(NUMBERS)
    if pick < 0.7 and depth < 6:
        return [hostile_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if pick < 0.8 and depth < 6:
        return {rng.choice(["a", "user_id", "", "\x00"]): hostile_value(rng, depth + 1) for _ in range(2)}
    if pick < 0.9:
        return None
    return "".join(chr(rng.randint(0, 0x10FFFF)) for _ in range(rng.randint(0, 8)))


def good_event(rng: random.Random) -> dict[str, Any]:
    return {
        "event_id": f"e{rng.getrandbits(64):x}", "user_id": f"user-{rng.randint(0, 999)}",
        "episode_id": "70000011", "event_type": rng.choice(sorted(events.EVENT_TYPES)),
        "occurred_at": "2026-11-23T08:15:00Z", "position_s": rng.random() * 3000,
        "episode_duration_s": 3000.0,
        "session_id": "s1", "locale": "it-IT",
    }  # fmt: skip


def good_impression(rng: random.Random) -> dict[str, Any]:
    user = f"user-{rng.randint(0, 999)}"
    bucket, policy = assign(user, RULES.ab)
    return {
        "impression_id": f"i{rng.getrandbits(64):x}", "user_id": user,
        "served_version": "v20261123T000000Z-2026-11-22", "experiment_id": RULES.ab.experiment_id,
        "bucket": bucket, "policy": policy, "served_at": "2026-11-23T08:15:00Z",
        "items": [{"episode_id": f"ep{r}", "rank": r, "propensity": 0.5} for r in range(1, 11)],
    }  # fmt: skip


def dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True, default=str).encode("utf-8", "surrogatepass")


def mutated(raw: bytes, rng: random.Random) -> bytes:
    at = rng.randint(0, len(raw))
    kind = rng.randrange(5)
    if kind == 0:
        return raw[:at]
    if kind == 1:
        return raw[:at] + bytes([rng.randrange(256)]) + raw[at + 1 :]
    junk = [b"\xff", b"\xed\xa0\x80", b"\x00", b"[" * rng.randint(1, 40), b'"\\ud800"', b"\\", b"{"]
    return raw[:at] + rng.choice(junk) + raw[at:]


def record(rng: random.Random) -> bytes | None:
    pick = rng.random()
    if pick < 0.01:
        return None
    if pick < 0.06:
        return rng.randbytes(rng.randint(0, 200))
    if pick < 0.09:
        n = rng.choice([20, 2_000, 40_000])
        return b"[" * n + b"]" * n
    if pick < 0.15:
        return dumps(hostile_value(rng))
    base = good_event(rng) if pick < 0.6 else good_impression(rng)
    for _ in range(rng.randint(0, 3)):
        base[rng.choice([*base, "extra"])] = hostile_value(rng)
    if "impression_id" in base and rng.random() < 0.8:  # signed as the API signs, or forged
        # A hostile value JSON cannot canonicalise leaves the record unsigned.
        with suppress(TypeError, ValueError, UnicodeEncodeError):
            base["signature"] = sign(base, RULES.key)
    raw = dumps(base)
    return mutated(raw, rng) if rng.random() < 0.4 else raw


def fuzz(n: int, seed: int) -> tuple[dict[str, Any], list[bytes | None]]:
    rng = random.Random(seed)
    stats: dict[str, Any] = {}
    sample: list[bytes | None] = []
    outcomes = {name: Counter() for name in ("events", "impressions")}
    started = time.perf_counter()
    for i in range(n):
        raw = record(rng)
        if i % 10 == 0:
            sample.append(raw)
        for name, validate in (("events", events.validate), ("impressions", validate_impression)):
            try:
                result = validate(raw, RECEIVED)
            except Exception as exc:  # the count this bench exists for
                outcomes[name]["raised"] += 1
                outcomes[name][f"raised {type(exc).__name__}"] += 1
                continue
            outcomes[name]["accepted" if result.error is None else "rejected"] += 1
    seconds = time.perf_counter() - started
    for name, counts in outcomes.items():
        by_type = {k.removeprefix("raised "): v for k, v in counts.items() if k.startswith("raised ")}
        stats[name] = {"records": n, "raised": counts["raised"], "accepted": counts["accepted"],
                       "rejected": counts["rejected"], "raised_by_type": by_type}  # fmt: skip
    stats["python_seconds"] = round(seconds, 1)
    stats["python_records_per_s"] = round(2 * n / seconds)
    return stats, sample


def spark_parity(sample: list[bytes | None]) -> dict[str, Any]:
    """Spark's decisions on ``sample`` beside ``events.validate``'s: how many differ (must be 0)."""
    from dagster_pyspark.resources import spark_session_from_config

    from podrec.ingest.spark_validation import decide, decide_rest_in_python, validation_session, word
    from podrec.lake.spark import spark_conf
    from podrec.settings import load_settings

    spark = validation_session(spark_session_from_config(spark_conf(load_settings(), app_name="podrec-fuzz")))
    started = time.perf_counter()
    df = spark.createDataFrame(
        [(raw, 0, i, RECEIVED) for i, raw in enumerate(sample)],
        "value binary, partition int, offset long, timestamp timestamp",
    )
    decided = decide(df).cache()
    rows = word(decide_rest_in_python(decided)).select("kafka_offset", "error").toLocalIterator()
    differ, examples = 0, []
    for row in rows:
        expected = events.validate(sample[row["kafka_offset"]], RECEIVED).error
        if row["error"] != expected:
            differ += 1
            if len(examples) < 5:
                examples.append({"spark": row["error"], "python": expected})
    decided.unpersist()
    return {"records": len(sample), "differ": differ, "examples": examples,
            "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--spark", type=int, default=100_000, help="Of them, how many also go through Spark.")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    stats, sample = fuzz(args.records, args.seed)
    stats["spark_events"] = spark_parity(sample[: args.spark]) if args.spark else None
    stats["seed"], stats["measured_at"] = args.seed, datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(stats, indent=2) + "\n")
    print(json.dumps(stats, indent=2))
    raised = stats["events"]["raised"] + stats["impressions"]["raised"]
    differ = (stats["spark_events"] or {}).get("differ", 0)
    raise SystemExit(1 if raised or differ else 0)


if __name__ == "__main__":
    main()
