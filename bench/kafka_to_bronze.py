"""Benchmark: Kafka → bronze.user_events throughput, beside a plain consumer of the same topic.

Starts its own broker on free ports (data in a temporary folder), produces N simulated events,
then in the same run measures
  peer:   a plain confluent-kafka consumer reading every record of the topic (no parsing), and
  podrec: `podrec.ingest.kafka_to_bronze.run` (Spark Kafka source → validation → dedup → two
          Delta appends → offset commit), with a started Spark session (JVM start-up reported
          separately) — `podrec_*`, the first ingestion in that JVM, as a fresh `podrec ingest`
          pays it; `podrec_warm_*`, the same events ingested again in the same JVM (another
          consumer group and lake), once the JIT has compiled the ingestion's code.
Prints a JSON line and writes bench/results/kafka_to_bronze.json.

    .venv/bin/python bench/kafka_to_bronze.py --events 300000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from podrec.content.podcastindex import sample_snapshot
from podrec.ingest.kafka_to_bronze import run
from podrec.ingest.producer import produce_events
from podrec.ingest.simulator import simulate
from podrec.lake.paths import table_uri
from podrec.settings import load_settings
from podrec_app import localinfra
from podrec_app.localinfra import free_port
from resources import KafkaResource, build_resources


def make_events(n: int) -> list[dict]:
    end = date(2026, 11, 23)
    catalog, _ = sample_snapshot(end)
    days = [end - timedelta(days=i) for i in range(13, -1, -1)]
    events: list[dict] = []
    for _, day_events in simulate(catalog, days, max(100, n // 60), epoch=days[0], seed=11):
        events.extend(day_events)
    if len(events) < n:
        raise SystemExit(f"simulated only {len(events)} events; raise the user count")
    return events[:n]


def plain_consumer(kafka, topic: str, n: int) -> float:
    consumer = kafka.consumer(group_id=f"bench-peer-{uuid.uuid4().hex[:6]}")
    consumer.subscribe([topic])
    seen, start = 0, time.perf_counter()
    try:
        while seen < n:
            for msg in consumer.consume(num_messages=10_000, timeout=1.0):
                if msg.error() is None and msg.value() is not None:
                    seen += 1
    finally:
        consumer.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="podrec-bench-"))
    settings = load_settings(
        lake={"uri": str(root / "lake")}, data={"dir": str(root / "data")},
        kafka={"bootstrap": f"127.0.0.1:{free_port()}", "controller_port": free_port(),
               "events_topic": "bench.events", "consumer_group": "bench-bronze"},
        mongo={"uri": f"mongodb://127.0.0.1:{free_port()}/"}, spark={"shuffle_partitions": 4},
    )  # fmt: skip
    localinfra.up(settings)
    try:
        resources = build_resources(settings)
        kafka = resources["kafka"]
        events = make_events(args.events)
        produce_events(kafka.producer(), kafka.events_topic, events, len(events), progress=False)

        peer_s = plain_consumer(kafka, kafka.events_topic, len(events))

        from dagster_pyspark.resources import spark_session_from_config

        from podrec.lake.spark import spark_conf

        t0 = time.perf_counter()
        spark = spark_session_from_config(spark_conf(settings, app_name="podrec-bench"))
        spark.range(1).count()
        jvm_s = time.perf_counter() - t0

        def ingest_all(kafka: KafkaResource, lake_root: Path) -> float:
            t0 = time.perf_counter()
            report = run(
                spark, kafka, table_uri(str(lake_root), "bronze", "user_events"),
                table_uri(str(lake_root), "bronze", "user_events_rejected"),
            )  # fmt: skip
            seconds = time.perf_counter() - t0
            assert report.accepted == len(events), report
            return seconds

        podrec_s = ingest_all(kafka, root / "lake")
        warm_kafka = build_resources(settings.with_(kafka={"consumer_group": "bench-bronze-warm"}))["kafka"]
        warm_s = ingest_all(warm_kafka, root / "lake-warm")
        spark.stop()
    finally:
        localinfra.down(settings)

    result = {
        "events": len(events),
        "peer_plain_consumer_events_per_s": round(len(events) / peer_s),
        "podrec_kafka_to_bronze_events_per_s": round(len(events) / podrec_s),
        "ratio_podrec_to_peer": round(peer_s / podrec_s, 3),
        "peer_seconds": round(peer_s, 2),
        "podrec_seconds": round(podrec_s, 2),
        "spark_session_start_seconds": round(jvm_s, 2),
        "podrec_warm_events_per_s": round(len(events) / warm_s),
        "ratio_warm_podrec_to_peer": round(peer_s / warm_s, 3),
        "podrec_warm_seconds": round(warm_s, 2),
        "machine": f"{os.cpu_count()} cores",
    }
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "kafka_to_bronze.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
