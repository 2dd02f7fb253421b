"""The impressions topic → ``bronze.impressions`` / ``bronze.impressions_rejected`` → ``silver.impressions``.

Bronze is landed by the events' own exactly-once path (``kafka_to_bronze``) with the impression
``RecordKind``: same offset ranges, same skip of coordinates already landed, each append fenced as the
writer's next Delta transaction, offsets committed last; a repeated ``impression_id`` is rejected as a
duplicate. Silver is one row per
served item, keyed by (impression_id, rank), for the readout to join plays to what was shown.
"""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import TYPE_CHECKING

from podrec.ingest import impressions
from podrec.ingest.kafka_to_bronze import (
    IngestReport,
    KafkaEndpoint,
    RecordKind,
    accepted_rows,
    python_kind,
    rejected_rows,
)
from podrec.ingest.kafka_to_bronze import run as run_ingestion
from podrec.lake.delta import append, exists
from podrec.lake.schemas import BRONZE_IMPRESSIONS_COLUMNS, SILVER_IMPRESSIONS, VALIDATED_IMPRESSION
from podrec.privacy import Suppression
from podrec.settings import PodrecSettings, impressions_signing_key

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def impression_kind(settings: PodrecSettings) -> RecordKind:
    """The impressions topic's kind, its records held to ``settings.ingest``'s limits and to
    ``ImpressionRules``: signed with the key the API signs with, in the arm of ``settings.ab``, no
    propensity under ``settings.impressions.min_propensity``. Until the API first serves, its topic
    does not exist: nothing served yet, not an error."""
    rules = impressions.ImpressionRules(
        impressions_signing_key(settings), settings.ab, settings.impressions.min_propensity
    )
    validate = partial(impressions.validate, limits=settings.ingest.limits, rules=rules)
    return python_kind(
        validate, VALIDATED_IMPRESSION, "impression_id", "served_at", BRONZE_IMPRESSIONS_COLUMNS,
        topic_may_be_missing=True,
    )  # fmt: skip


def run(
    spark: SparkSession,
    kafka: KafkaEndpoint,
    topic: str,
    impressions_uri: str,
    rejected_uri: str,
    replay: date | None = None,
    *,
    kind: RecordKind,
    suppression: Suppression | None = None,
    force_replay: bool = False,
) -> IngestReport:
    """Land what is new on the impressions ``topic`` (or replay one event_date) in the two bronze tables.

    Both tables exist after the first run, empty until something serves: the API may start after the
    pipeline, and the tables' readers and checks never meet a missing path."""
    report = run_ingestion(
        spark, kafka, impressions_uri, rejected_uri, replay, topic=topic, kind=kind, suppression=suppression,
        force_replay=force_replay,
    )  # fmt: skip
    none = spark.createDataFrame([], VALIDATED_IMPRESSION)
    empty = (accepted_rows(none, kind), rejected_rows(none, kind))
    for rows, uri in zip(empty, (impressions_uri, rejected_uri), strict=True):
        if not exists(spark, uri):
            append(rows, uri, "event_date")
    return report


def served_items(bronze: DataFrame) -> DataFrame:
    """``silver.impressions`` rows of ``bronze`` (already narrowed to the days wanted): one per served
    item, each impression once (the first received, should a producer have sent it twice)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    first = Window.partitionBy("impression_id").orderBy("received_at", "kafka_partition", "kafka_offset")
    once = bronze.withColumn("_n", F.row_number().over(first)).where("_n = 1")
    items = once.select("*", F.size("items").alias("list_length"), F.explode("items").alias("item"))
    per_item = {"rank", "episode_id", "propensity", "explored"}
    return items.select(
        *[
            F.col(f"item.{f.name}" if f.name in per_item else f.name).cast(f.dataType).alias(f.name)
            for f in SILVER_IMPRESSIONS.fields
        ]
    )
