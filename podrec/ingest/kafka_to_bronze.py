"""Kafka → ``bronze.user_events`` / ``bronze.user_events_rejected``, exactly once.

How "exactly once" holds across crashes and re-runs:
1. A run reads a fixed offset range: from the consumer group's committed offsets to the
   high watermarks it saw at the start (Spark's Kafka batch source).
2. Records whose (partition, offset) already sit in either table are dropped first, so a
   range read twice is written once.
3. Rejected rows are appended, then accepted rows; each append is one atomic Delta commit.
4. Only then are the offsets committed to Kafka. A crash anywhere before that re-reads the
   same range next time, and step 2 drops what was already written.
Runs must not overlap (one ingestion at a time; the Dagster job is limited to one run).

Every consumed record ends in exactly one table: accepted + rejected = consumed.

The same path lands any topic whose records have an id and a time (``RecordKind``): the events
(``EVENTS``, the default) and the served lists (``podrec.ingest.impressions_to_bronze``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Protocol

import pandas as pd
from confluent_kafka import Consumer, TopicPartition
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from podrec.ingest.events import FUTURE_TOLERANCE, Validated, validate
from podrec.ingest.kafka_offsets import commit, group_offsets
from podrec.lake.delta import append, replace_partitions
from podrec.lake.schemas import BRONZE_REJECTED_COLUMNS, BRONZE_USER_EVENTS_COLUMNS, VALIDATED_RECORD


class KafkaEndpoint(Protocol):
    """Where events come from: podrec's KafkaResource, or anything shaped like it."""

    bootstrap: str
    events_topic: str

    def consumer(self) -> Consumer: ...


@dataclass(frozen=True)
class RecordKind:
    """What a topic carries: how a record is validated, its id (a repeat is a duplicate), the time
    whose UTC date partitions it, and the columns its accepted table keeps."""

    validate: Callable[[bytes | None, datetime], Validated]
    record: StructType  # a validated record: the accepted columns, then error and raw
    key: str
    time_field: str
    columns: list[str]


EVENTS = RecordKind(validate, VALIDATED_RECORD, "event_id", "occurred_at", BRONZE_USER_EVENTS_COLUMNS)


@dataclass
class IngestReport:
    consumed: int = 0
    accepted: int = 0
    rejected: int = 0
    already_ingested: int = 0
    lost_to_retention: int = 0
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)  # partition → [start, end)
    event_dates: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)


def _validate_batches(batches: Iterator[pd.DataFrame], kind: RecordKind) -> Iterator[pd.DataFrame]:
    """mapInPandas body: Kafka records → validated rows (the kind's columns or an error)."""
    columns = [f.name for f in kind.record.fields]
    for batch in batches:
        out = []
        for value, partition, offset, timestamp in zip(
            batch["value"], batch["partition"], batch["offset"], batch["timestamp"], strict=True
        ):
            received_at = pd.Timestamp(timestamp).tz_localize("UTC").to_pydatetime()
            result = kind.validate(None if value is None else bytes(value), received_at)
            if result.event is not None:
                row = dict(result.event)
                row["event_date"] = row[kind.time_field].date()
                row["error"], row["raw"] = None, None
            else:
                row = dict.fromkeys(columns)
                row["event_date"] = received_at.date()
                row["error"], row["raw"] = result.error, None if value is None else bytes(value)
            row.update(received_at=received_at, kafka_partition=int(partition), kafka_offset=int(offset))
            out.append(row)
        yield pd.DataFrame(out, columns=columns)


def read_range(
    spark: SparkSession,
    bootstrap: str,
    topic: str,
    ranges: dict[int, tuple[int, int]],
    kind: RecordKind = EVENTS,
) -> DataFrame:
    """The Kafka records of ``topic`` in ``ranges`` (partition → [start, end)), validated."""
    start = {topic: {str(p): s for p, (s, _) in ranges.items()}}
    end = {topic: {str(p): e for p, (_, e) in ranges.items()}}
    records = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("assign", json.dumps({topic: sorted(ranges)}))
        .option("startingOffsets", json.dumps(start))
        .option("endingOffsets", json.dumps(end))
        .load()
        .select("value", "partition", "offset", "timestamp")
    )
    return records.mapInPandas(lambda batches: _validate_batches(batches, kind), kind.record)


def _table_or_none(spark: SparkSession, uri: str) -> DataFrame | None:
    from delta.tables import DeltaTable

    return spark.read.format("delta").load(uri) if DeltaTable.isDeltaTable(spark, uri) else None


def _coordinates_in(df: DataFrame, ranges: dict[int, tuple[int, int]]) -> DataFrame:
    cond = None
    for p, (s, e) in ranges.items():
        c = (F.col("kafka_partition") == p) & (F.col("kafka_offset") >= s) & (F.col("kafka_offset") < e)
        cond = c if cond is None else cond | c
    return df.where(cond).select("kafka_partition", "kafka_offset")


def split_accepted_rejected(
    validated: DataFrame, existing_events: DataFrame | None, kind: RecordKind = EVENTS
) -> tuple[DataFrame, DataFrame]:
    """Accepted and rejected rows: an id seen before (in this batch or the table) is rejected."""
    key = kind.key
    order = Window.partitionBy(key).orderBy("received_at", "kafka_partition", "kafka_offset")
    ranked = validated.withColumn(
        "error",
        F.when(
            F.col("error").isNull() & (F.row_number().over(order) > 1),
            F.lit(f"duplicate {key}: seen earlier in the batch"),
        ).otherwise(F.col("error")),
    )
    if existing_events is not None:
        seen = existing_events.select(key, "event_date").distinct().withColumn("_seen", F.lit(True))
        ranked = ranked.join(seen, [key, "event_date"], "left").withColumn(
            "error",
            F.when(
                F.col("error").isNull() & F.col("_seen"), F.lit(f"duplicate {key}: already ingested")
            ).otherwise(F.col("error")),
        )
    accepted = ranked.where(F.col("error").isNull()).select(*kind.columns)
    rejected = ranked.where(F.col("error").isNotNull()).select(
        F.coalesce(F.col("raw"), F.lit(b"").cast("binary")).alias("raw"),
        F.expr("CAST(raw AS STRING)").alias("raw_text"),
        *[c for c in BRONZE_REJECTED_COLUMNS if c not in ("raw", "raw_text")],
    )
    return accepted, rejected


def _reasons(rejected: DataFrame) -> dict[str, int]:
    # Group the reason's leading phrase so metadata stays readable ("bad JSON", "missing field(s)").
    head = F.regexp_extract("error", r"^([^:]+)", 1)
    return {
        r["reason"]: r["n"]
        for r in rejected.groupBy(head.alias("reason")).agg(F.count("*").alias("n")).collect()
    }


def _split_and_count(
    df: DataFrame, existing_events: DataFrame | None, report: IngestReport, kind: RecordKind
) -> tuple[DataFrame, DataFrame]:
    """``split``, cached (it is counted, grouped and written), counts and reasons on ``report``."""
    accepted, rejected = split_accepted_rejected(df, existing_events, kind)
    accepted, rejected = accepted.persist(), rejected.persist()
    report.accepted, report.rejected = accepted.count(), rejected.count()
    report.reasons = _reasons(rejected)
    return accepted, rejected


def ingest(
    spark: SparkSession,
    consumer: Consumer,
    bootstrap: str,
    topic: str,
    events_uri: str,
    rejected_uri: str,
    kind: RecordKind = EVENTS,
) -> IngestReport:
    """Consume everything new on ``topic`` for ``consumer``'s group into the two bronze tables."""
    positions = group_offsets(consumer, topic)
    report = IngestReport(lost_to_retention=sum(p.lost for p in positions))
    ranges = {p.partition: (p.start, p.high) for p in positions if p.high > p.start}
    report.offsets = ranges
    if not ranges:
        return report

    validated = read_range(spark, bootstrap, topic, ranges, kind)
    events_table = _table_or_none(spark, events_uri)
    rejected_table = _table_or_none(spark, rejected_uri)
    fresh = validated
    for table in (events_table, rejected_table):
        if table is not None:
            fresh = fresh.join(
                _coordinates_in(table, ranges), ["kafka_partition", "kafka_offset"], "left_anti"
            )
    cached = [fresh.persist()]
    try:
        report.consumed = sum(e - s for s, e in ranges.values())
        dates = [r["event_date"] for r in fresh.select("event_date").distinct().collect()]
        existing = None
        if events_table is not None and dates:
            existing = events_table.where(F.col("event_date").isin(dates))
        accepted, rejected = _split_and_count(fresh, existing, report, kind)
        cached += [accepted, rejected]
        report.already_ingested = report.consumed - report.accepted - report.rejected
        report.event_dates = sorted(d.isoformat() for d in dates)
        # Rejected first: if we crash between the two, the re-run finds these offsets done.
        # An empty append still creates a table that does not exist yet, so readers of
        # either table never meet a missing path after the first ingestion.
        if report.rejected or rejected_table is None:
            append(rejected, rejected_uri, "event_date")
        if report.accepted or events_table is None:
            append(accepted, events_uri, "event_date")
    finally:
        for df in cached:
            df.unpersist()
    commit(consumer, topic, {p: e for p, (_, e) in ranges.items()})
    return report


def replay_day(
    spark: SparkSession,
    consumer: Consumer,
    bootstrap: str,
    topic: str,
    events_uri: str,
    rejected_uri: str,
    day: date,
    kind: RecordKind = EVENTS,
) -> IngestReport:
    """Rebuild one ``event_date`` of both tables from what the topic still holds.

    Reads from the first offset that can hold the day's events up to the group's committed
    offsets (never past what regular ingestion has seen), and replaces the day's partition
    in each table in one commit each.
    """
    positions = [p for p in group_offsets(consumer, topic) if p.committed is not None]
    since = datetime.combine(day, time(), tzinfo=UTC) - FUTURE_TOLERANCE
    lookups = consumer.offsets_for_times(
        [TopicPartition(topic, p.partition, int(since.timestamp() * 1000)) for p in positions], timeout=10
    )
    first = {tp.partition: tp.offset for tp in lookups}
    ranges = {}
    for p in positions:
        start = first.get(p.partition, -1)
        start = p.committed if start < 0 else max(start, p.low)
        if p.committed > start:
            ranges[p.partition] = (start, p.committed)
    report = IngestReport(offsets=ranges, event_dates=[day.isoformat()])
    if not ranges:
        return report
    validated = read_range(spark, bootstrap, topic, ranges, kind).where(F.col("event_date") == F.lit(day))
    cached = [validated.persist()]
    try:
        report.consumed = validated.count()
        accepted, rejected = _split_and_count(validated, None, report, kind)
        cached += [accepted, rejected]
        replace_partitions(rejected, rejected_uri, "event_date", [day.isoformat()])
        replace_partitions(accepted, events_uri, "event_date", [day.isoformat()])
    finally:
        for df in cached:
            df.unpersist()
    return report


def run(
    spark: SparkSession,
    kafka: KafkaEndpoint,
    events_uri: str,
    rejected_uri: str,
    replay: date | None = None,
    topic: str | None = None,
    kind: RecordKind = EVENTS,
) -> IngestReport:
    """Ingest what is new on ``topic`` (default the events topic), or replay one event_date, with a
    consumer opened and closed here."""
    consumer = kafka.consumer()
    try:
        args = (spark, consumer, kafka.bootstrap, topic or kafka.events_topic, events_uri, rejected_uri)
        return replay_day(*args, replay, kind) if replay else ingest(*args, kind)
    finally:
        consumer.close()
