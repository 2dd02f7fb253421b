"""Kafka → ``bronze.user_events`` / ``bronze.user_events_rejected``, exactly once.

How "exactly once" holds across crashes, re-runs and ingestions running at the same time
(``podrec ingest`` twice, the CLI beside a Dagster run), with no lock of its own (on an object
store every Delta commit also takes its table's commit lock, ``podrec.lake.commit_lock``):
1. A plan reads a fixed offset range (the consumer group's committed offsets to the high
   watermarks), then each table's mark for the writer ``podrec-ingest/<group>/<topic>``: the
   table version, and the number of that writer's last commit (``delta.writer_mark``).
2. Records whose (partition, offset) sit in either table at those versions are dropped, so a
   range read twice is written once.
3. Validation runs in Spark SQL with ``events.validate``'s rules and reasons
   (``spark_validation``); an event_id accepted before (in the table, or earlier in the batch)
   is rejected as a duplicate.
4. Accepted rows are appended, then rejected rows: each append one Delta commit numbered as the
   writer's next (``delta.append_once``). It lands only if no other ingestion committed to that
   table since step 1 read it; if one did, the plan is stale and is made again from step 1,
   where step 2 drops what the other one wrote. Accepted first, because only acceptance depends
   on what others accept: once a plan's accepted rows are in, its rejections (invalid, or a
   duplicate of an accepted event) stay true whoever commits next.
5. Only then are the offsets committed to Kafka (never moving a partition back).
Between 3 and 4, the records of listeners on the suppression list (``podrec.privacy``) are rejected
as "forgotten listener" and their bytes dropped: a forgotten listener does not come back through a
late event, a re-sent one or a replay, and what they sent is not kept either.
A crash before step 5 re-reads the range next time; between the two appends, step 2 drops the
accepted rows already written and the rejected ones are written then.

Every consumed record ends in exactly one table: accepted + rejected = consumed. The Dagster
pool ``kafka_ingest`` only saves the work a stale plan would redo.

The same path lands any topic whose records have an id and a time (``RecordKind``): the events
(``EVENTS``, the default, validated in Spark SQL) and the served lists
(``podrec.ingest.impression_tables``, validated record by record in Python: a small topic).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from functools import partial
from typing import Protocol

from confluent_kafka import Consumer, TopicPartition
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from podrec.ingest.events import DEFAULT_LIMITS, FUTURE_TOLERANCE, RecordLimits
from podrec.ingest.kafka_offsets import commit, group_offsets
from podrec.ingest.spark_validation import (
    TO_PYTHON,
    Validator,
    decide,
    decide_rest_in_python,
    validate_batches,
    validation_session,
    word,
)
from podrec.lake.delta import WriterMark, append_once, exists, read, replace_partitions, writer_mark
from podrec.lake.schemas import BRONZE_REJECTED_COLUMNS, BRONZE_USER_EVENTS_COLUMNS
from podrec.privacy import FORGOTTEN, Suppression, hashed

# Plans made stale by other ingestions before giving up (each stale plan means another
# ingestion wrote; giving up loses nothing, the next run carries on).
MAX_PLANS = 5
FETCH_BYTES = 32 * 1024 * 1024


class KafkaEndpoint(Protocol):
    """Where events come from: podrec's KafkaResource, or anything shaped like it."""

    events_topic: str
    consumer_group: str

    def consumer(self) -> Consumer: ...

    def spark_source_options(self) -> dict[str, str]:
        """The Spark Kafka source's connection options (podrec.ingest.kafka_security)."""
        ...


@dataclass(frozen=True)
class RecordKind:
    """What a topic carries and how its Kafka records (value, partition, offset, timestamp) become
    rows: ``decide`` gives the accepted table's columns with event_date, received_at, the
    coordinates, ``error`` and ``raw``, and may leave rare records to ``finish`` (marked
    ``TO_PYTHON``); ``word`` writes rejected rows' reasons in full; a repeated ``key`` is a
    duplicate; ``columns`` are what the accepted table keeps. ``topic_may_be_missing``: a topic
    read before anything wrote it is empty, not an error (the API creates the impressions topic
    when it first serves)."""

    decide: Callable[[DataFrame], DataFrame]
    finish: Callable[[DataFrame], DataFrame]
    word: Callable[[DataFrame], DataFrame]
    key: str
    columns: list[str]
    topic_may_be_missing: bool = False


def event_kind(limits: RecordLimits) -> RecordKind:
    """The events topic's kind, its records held to ``limits`` (``settings.ingest``)."""
    return RecordKind(
        partial(decide, limits=limits), partial(decide_rest_in_python, limits=limits), word, "event_id",
        BRONZE_USER_EVENTS_COLUMNS,
    )  # fmt: skip


EVENTS = event_kind(DEFAULT_LIMITS)


def _as_is(df: DataFrame) -> DataFrame:
    return df


def python_kind(
    validate: Validator, record: StructType, key: str, time_field: str, columns: list[str],
    topic_may_be_missing: bool = False,
) -> RecordKind:  # fmt: skip
    """A kind validated record by record in Python (``validate`` gives the reason in full), for topics
    small enough that a Python worker per partition costs nothing that matters."""

    def decide_in_python(records: DataFrame) -> DataFrame:
        return records.mapInPandas(lambda b: validate_batches(b, validate, record, time_field), record)

    return RecordKind(decide_in_python, _as_is, _as_is, key, columns, topic_may_be_missing)


class IngestContended(RuntimeError):
    """Other ingestions of the same topic and group kept committing first; nothing was lost."""


class ReplayRefused(RuntimeError):
    """A replay that would delete rows it cannot re-read (the topic no longer holds them); nothing
    was changed. The message names them; ``force`` replays anyway."""


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
    stale_plans: int = 0  # plans another ingestion's commit made stale, made again

    def read(self, ranges: dict[int, tuple[int, int]]) -> None:
        """Count a range a plan read into ``offsets`` and ``consumed`` (successive plans overlap)."""
        for p, (s, e) in ranges.items():
            old = self.offsets.get(p, (s, e))
            self.offsets[p] = (min(s, old[0]), max(e, old[1]))
        self.consumed = sum(e - s for s, e in self.offsets.values())


def read_range(
    spark: SparkSession, source: Mapping[str, str], topic: str, ranges: dict[int, tuple[int, int]]
) -> DataFrame:
    """The Kafka records of ``topic`` in ``ranges`` (partition → [start, end)), read with the
    connection options ``source`` (bootstrap servers and security, podrec.ingest.kafka_security)."""
    start = {topic: {str(p): s for p, (s, _) in ranges.items()}}
    end = {topic: {str(p): e for p, (_, e) in ranges.items()}}
    return (
        spark.read.format("kafka")
        .options(**source)
        .option("assign", json.dumps({topic: sorted(ranges)}))
        .option("startingOffsets", json.dumps(start))
        .option("endingOffsets", json.dumps(end))
        # A batch reads its whole range: fetch it in few large requests, not many 1 MiB ones.
        .option("kafka.max.partition.fetch.bytes", str(FETCH_BYTES))
        .option("kafka.fetch.max.bytes", str(FETCH_BYTES))
        .load()
        .select("value", "partition", "offset", "timestamp")
    )


def _coordinates_in(df: DataFrame, ranges: dict[int, tuple[int, int]]) -> DataFrame:
    """(partition, offset) of ``df``'s rows inside ``ranges``, named as the Kafka source names them."""
    cond = None
    for p, (s, e) in ranges.items():
        c = (F.col("kafka_partition") == p) & (F.col("kafka_offset") >= s) & (F.col("kafka_offset") < e)
        cond = c if cond is None else cond | c
    return df.where(cond).select(
        F.col("kafka_partition").alias("partition"), F.col("kafka_offset").alias("offset")
    )


def judge_duplicates(
    validated: DataFrame, existing_events: DataFrame | None, key: str = "event_id"
) -> tuple[DataFrame, list[DataFrame]]:
    """``validated`` with a ``key`` seen before rejected — a later copy in the batch as "seen
    earlier in the batch", the first copy of one already in the table as "already ingested" —
    and the cached frames it reads (unpersist them when done).

    The repeated ids come from an aggregate over the ids alone (not a window over whole rows),
    are few, and are broadcast to each use; when none repeat, ``validated`` comes back as is.
    """
    valid = validated.where(F.col("error").isNull())
    keys = [key, "event_date"]
    coordinates = F.struct("received_at", "kafka_partition", "kafka_offset")
    in_batch = (
        valid.groupBy(key)
        .agg(F.min(coordinates).alias("_first"), F.count(F.lit(1)).alias("_copies"))
        .where(F.col("_copies") > 1)
        .drop("_copies")
        .persist()
    )
    cached, judged = [in_batch], validated
    if in_batch.count():
        judged = judged.join(F.broadcast(in_batch), key, "left").withColumn(
            "error",
            F.when(
                F.col("error").isNull() & F.col("_first").isNotNull() & (coordinates != F.col("_first")),
                F.lit(f"duplicate {key}: seen earlier in the batch"),
            ).otherwise(F.col("error")),
        )
    if existing_events is not None:
        ingested = (
            existing_events.select(*keys).join(valid.select(*keys), keys, "left_semi").distinct().persist()
        )
        cached.append(ingested)
        if ingested.count():
            judged = judged.join(
                F.broadcast(ingested.withColumn("_seen", F.lit(True))), keys, "left"
            ).withColumn(
                "error",
                F.when(
                    F.col("error").isNull() & F.col("_seen"), F.lit(f"duplicate {key}: already ingested")
                ).otherwise(F.col("error")),
            )
    return judged, cached


def mark_forgotten(judged: DataFrame, hashes: frozenset[str]) -> DataFrame:
    """``judged`` with the records of suppressed listeners rejected as ``FORGOTTEN`` and their bytes
    dropped — a rejected record too, when its raw text names a suppressed ``user_id``."""
    if not hashes:
        return judged
    forgotten = judged.sparkSession.createDataFrame([(h,) for h in sorted(hashes)], "_forgotten string")
    who = F.coalesce(F.col("user_id"), F.get_json_object(F.col("raw").cast("string"), "$.user_id"))
    hit = F.col("_forgotten").isNotNull()
    return (
        judged.join(F.broadcast(forgotten), hashed(who) == F.col("_forgotten"), "left")
        .withColumn(
            "error", F.when(hit & F.col("error").isNull(), F.lit(FORGOTTEN)).otherwise(F.col("error"))
        )
        .withColumn("raw", F.when(hit, F.lit(None).cast("binary")).otherwise(F.col("raw")))
        .drop("_forgotten")
    )


def accepted_rows(judged: DataFrame, kind: RecordKind = EVENTS) -> DataFrame:
    return judged.where(F.col("error").isNull()).select(*kind.columns)


def rejected_rows(judged: DataFrame, kind: RecordKind = EVENTS) -> DataFrame:
    return kind.word(judged.where(F.col("error").isNotNull())).select(
        F.coalesce(F.col("raw"), F.lit(b"").cast("binary")).alias("raw"),
        F.expr("CAST(raw AS STRING)").alias("raw_text"),
        *[c for c in BRONZE_REJECTED_COLUMNS if c not in ("raw", "raw_text")],
    )


@dataclass(frozen=True)
class _Tally:
    accepted: int
    rejected: int
    reasons: dict[str, int]
    event_dates: list[date]
    accepted_dates: list[date]


def _tally(judged: DataFrame) -> _Tally:
    """Counts, reasons and dates of a batch in one Spark job."""
    # Group the reason's leading phrase so metadata stays readable ("bad JSON", "missing field(s)").
    head = F.regexp_extract("error", r"^([^:]+)", 1)
    rows = judged.groupBy(head.alias("reason"), "event_date").agg(F.count(F.lit(1)).alias("n")).collect()
    reasons: dict[str, int] = {}
    for r in rows:
        if r["reason"] is not None:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + r["n"]
    accepted = [r for r in rows if r["reason"] is None]
    return _Tally(
        sum(r["n"] for r in accepted),
        sum(reasons.values()),
        reasons,
        sorted({r["event_date"] for r in rows}),
        sorted({r["event_date"] for r in accepted}),
    )


def _validated(decided: DataFrame, kind: RecordKind) -> tuple[DataFrame, _Tally]:
    """The batch with Python's decisions where Spark left them, and its tally.

    The tally of Spark's decisions (one job over the cached rows) tells whether Python has
    anything to decide, so a batch Spark decided alone never starts a Python worker.
    """
    tally = _tally(decided)
    if TO_PYTHON not in tally.reasons:
        return decided, tally
    validated = kind.finish(decided)
    return validated, _tally(validated)


def _write_plan(
    spark: SparkSession,
    source: Mapping[str, str],
    topic: str,
    ranges: dict[int, tuple[int, int]],
    events_uri: str,
    rejected_uri: str,
    writer: str,
    report: IngestReport,
    kind: RecordKind,
    suppression: Suppression | None,
) -> bool:
    """Plan ``ranges`` on the tables as they stand now and write it; False if the plan went stale."""
    marks: dict[str, WriterMark] = {uri: writer_mark(uri, writer) for uri in (events_uri, rejected_uri)}
    records = read_range(spark, source, topic, ranges)
    for uri, mark in marks.items():
        if mark.version is not None:
            done = _coordinates_in(read(spark, uri, mark.version), ranges)
            records = records.join(done, ["partition", "offset"], "left_anti")
    decided = kind.decide(records).persist()
    cached = [decided]
    try:
        validated, tally = _validated(decided, kind)
        existing = None
        if marks[events_uri].version is not None and tally.accepted_dates:
            events = read(spark, events_uri, marks[events_uri].version)
            existing = events.where(F.col("event_date").isin(tally.accepted_dates))
        judged, repeats = judge_duplicates(validated, existing, kind.key)
        cached += repeats
        forgotten = suppression.hashes() if suppression else frozenset()
        judged = mark_forgotten(judged, forgotten)
        if judged is not validated:
            tally = _tally(judged)
        # An empty append still creates a table that does not exist yet, so readers of either
        # table never meet a missing path after the first ingestion.
        for uri, rows, n in (
            (events_uri, accepted_rows(judged, kind), tally.accepted),
            (rejected_uri, rejected_rows(judged, kind), tally.rejected),
        ):
            if n or marks[uri].version is None:
                if append_once(rows, uri, "event_date", writer, marks[uri]) is None:
                    return False
                if uri == events_uri:
                    report.accepted += n
                else:
                    report.rejected += n
                    for reason, count in tally.reasons.items():
                        report.reasons[reason] = report.reasons.get(reason, 0) + count
        report.event_dates = sorted(set(report.event_dates) | {d.isoformat() for d in tally.event_dates})
        return True
    finally:
        for df in cached:
            df.unpersist()


def ingest(
    spark: SparkSession,
    consumer: Consumer,
    source: Mapping[str, str],
    topic: str,
    group: str,
    events_uri: str,
    rejected_uri: str,
    kind: RecordKind = EVENTS,
    suppression: Suppression | None = None,
) -> IngestReport:
    """Consume everything new on ``topic`` for ``group`` (``consumer``'s) into the two bronze tables,
    leaving out the listeners ``suppression`` holds."""
    writer = f"podrec-ingest/{group}/{topic}"
    report = IngestReport()
    for _ in range(MAX_PLANS):
        positions = group_offsets(consumer, topic, missing_topic_ok=kind.topic_may_be_missing)
        report.lost_to_retention = sum(p.lost for p in positions)
        ranges = {p.partition: (p.start, p.high) for p in positions if p.high > p.start}
        if not ranges:
            return report
        report.read(ranges)
        written = _write_plan(
            spark, source, topic, ranges, events_uri, rejected_uri, writer, report, kind, suppression
        )
        report.already_ingested = report.consumed - report.accepted - report.rejected
        if written:
            commit(consumer, topic, {p: e for p, (_, e) in ranges.items()})
            return report
        report.stale_plans += 1
    raise IngestContended(
        f"{MAX_PLANS} plans of {topic} were made stale by other ingestions of group {group} "
        f"committing first; what they and this run wrote stays exactly once — run again"
    )


def replay_day(
    spark: SparkSession,
    consumer: Consumer,
    source: Mapping[str, str],
    topic: str,
    events_uri: str,
    rejected_uri: str,
    day: date,
    kind: RecordKind = EVENTS,
    suppression: Suppression | None = None,
    force: bool = False,
) -> IngestReport:
    """Rebuild one ``event_date`` of both tables from what the topic still holds.

    Reads from the first offset that can hold the day's events up to the group's committed
    offsets (never past what regular ingestion has seen), and replaces the day's partition
    in each table in one commit each. Refused (``ReplayRefused``) when the day holds rows the topic
    no longer has — deleted by its retention, or rejected rows of an import, which never were on it —
    since replacing the day would delete them; ``force`` replays anyway. Suppressed listeners stay out.
    """
    offsets = group_offsets(consumer, topic, missing_topic_ok=kind.topic_may_be_missing)
    lost = unreadable_rows(spark, (events_uri, rejected_uri), day, {p.partition: p.low for p in offsets})
    if lost and not force:
        raise ReplayRefused(
            f"replaying {day} would delete {sum(n for n, _, _ in lost.values())} row(s) the topic {topic} no "
            "longer holds (" + "; ".join(
                f"partition {p}: {n} at offsets {lo}-{hi}" if p >= 0 else f"{n} rejected at import"
                for p, (n, lo, hi) in sorted(lost.items())
            ) + "); nothing was changed — replay with force to rebuild the day from what is left"
        )  # fmt: skip
    positions = [p for p in offsets if p.committed is not None]
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
    decided = kind.decide(read_range(spark, source, topic, ranges)).persist()
    cached = [decided]
    try:
        validated = _validated(decided, kind)[0].where(F.col("event_date") == F.lit(day))
        judged, repeats = judge_duplicates(validated, None, kind.key)
        cached += repeats
        judged = mark_forgotten(judged, suppression.hashes() if suppression else frozenset())
        tally = _tally(judged)
        report.accepted, report.rejected, report.reasons = tally.accepted, tally.rejected, tally.reasons
        report.consumed = tally.accepted + tally.rejected
        replace_partitions(rejected_rows(judged, kind), rejected_uri, "event_date", [day.isoformat()])
        replace_partitions(accepted_rows(judged, kind), events_uri, "event_date", [day.isoformat()])
    finally:
        for df in cached:
            df.unpersist()
    return report


def unreadable_rows(
    spark: SparkSession, uris: tuple[str, ...], day: date, low: dict[int, int]
) -> dict[int, tuple[int, int, int]]:
    """Rows of ``day`` in the tables at ``uris`` that no read of the topic can bring back, per Kafka
    partition: (rows, first offset, last offset). ``low`` is each partition's oldest offset still on the
    topic; a partition it lacks, and the import's rows (a negative partition), are gone whole."""
    counts: dict[int, tuple[int, int, int]] = {}
    for uri in uris:
        if not exists(spark, uri):
            continue
        rows = read(spark, uri).where(F.col("event_date") == F.lit(day))
        starts = F.try_element_at(
            F.create_map(*[F.lit(x) for pair in low.items() for x in pair]), F.col("kafka_partition")
        )
        gone = rows.where(F.coalesce(F.col("kafka_offset") < starts, F.lit(True))) if low else rows
        for r in (
            gone.groupBy("kafka_partition")
            .agg(
                F.count(F.lit(1)).alias("n"),
                F.min("kafka_offset").alias("lo"),
                F.max("kafka_offset").alias("hi"),
            )
            .collect()
        ):
            n, lo, hi = counts.get(r["kafka_partition"], (0, r["lo"], r["hi"]))
            counts[r["kafka_partition"]] = (n + r["n"], min(lo, r["lo"]), max(hi, r["hi"]))
    return counts


def run(
    spark: SparkSession,
    kafka: KafkaEndpoint,
    events_uri: str,
    rejected_uri: str,
    replay: date | None = None,
    topic: str | None = None,
    kind: RecordKind = EVENTS,
    suppression: Suppression | None = None,
    force_replay: bool = False,
) -> IngestReport:
    """Ingest what is new on ``topic`` (default the events topic), or replay one event_date, with a
    consumer opened and closed here; ``suppression``'s listeners are left out either way."""
    spark = validation_session(spark)
    consumer = kafka.consumer()
    topic = topic or kafka.events_topic
    try:
        source = kafka.spark_source_options()
        if replay:
            return replay_day(
                spark,
                consumer,
                source,
                topic,
                events_uri,
                rejected_uri,
                replay,
                kind,
                suppression,
                force_replay,
            )
        group = kafka.consumer_group
        return ingest(spark, consumer, source, topic, group, events_uri, rejected_uri, kind, suppression)
    finally:
        consumer.close()
