"""Spark schemas of podrec's Delta tables, in the column order DESIGN.md lists."""

from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    DateType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

BRONZE_EPISODES = StructType(
    [
        StructField("episode_id", StringType(), nullable=False),
        StructField("feed_id", StringType()),
        StructField("podcast_guid", StringType()),
        StructField("title", StringType()),
        StructField("description", StringType()),
        StructField("feed_title", StringType()),
        StructField("language", StringType(), nullable=False),
        StructField("raw_language", StringType()),
        StructField("categories", ArrayType(StringType())),
        StructField("published_at", TimestampType()),
        StructField("duration_s", IntegerType()),
        StructField("enclosure_url", StringType()),
        StructField("transcript_url", StringType()),
        StructField("trend_score", DoubleType()),
        StructField("source", StringType(), nullable=False),
        StructField("ingest_date", DateType(), nullable=False),
        StructField("episode_guid", StringType()),
        StructField("episode_number", IntegerType()),
        StructField("season", IntegerType()),
    ]
)

# The columns of one consumed Kafka record after validation; split into the two tables below.
VALIDATED_RECORD = StructType(
    [
        StructField("event_id", StringType()),
        StructField("user_id", StringType()),
        StructField("episode_id", StringType()),
        StructField("event_type", StringType()),
        StructField("position_s", DoubleType()),
        StructField("episode_duration_s", DoubleType()),
        StructField("session_id", StringType()),
        StructField("locale", StringType()),
        StructField("device", StringType()),
        StructField("occurred_at", TimestampType()),
        StructField("received_at", TimestampType(), nullable=False),
        StructField("kafka_partition", IntegerType(), nullable=False),
        StructField("kafka_offset", LongType(), nullable=False),
        StructField("event_date", DateType(), nullable=False),
        StructField("error", StringType()),
        StructField("raw", BinaryType()),
    ]
)

BRONZE_USER_EVENTS_COLUMNS = [
    "event_id", "user_id", "episode_id", "event_type", "position_s", "episode_duration_s",
    "session_id", "locale", "device", "occurred_at", "received_at", "kafka_partition",
    "kafka_offset", "event_date",
]  # fmt: skip

BRONZE_REJECTED_COLUMNS = [
    "raw",
    "raw_text",
    "error",
    "kafka_partition",
    "kafka_offset",
    "received_at",
    "event_date",
]

CANONICAL_IDS = StructType(
    [
        StructField("episode_id", StringType(), nullable=False),
        StructField("canonical_episode_id", StringType(), nullable=False),
    ]
)

SILVER_TRANSCRIPTS = StructType(
    [
        StructField("episode_id", StringType(), nullable=False),
        StructField("language", StringType()),
        StructField("text", StringType()),
        StructField("source", StringType(), nullable=False),
        StructField("model", StringType()),
        StructField("audio_seconds", DoubleType()),
        StructField("processing_seconds", DoubleType()),
        StructField("transcribed_at", TimestampType()),
        StructField("problems", ArrayType(StringType())),
    ]
)

GOLD_EPISODE_EMBEDDINGS = StructType(
    [
        StructField("episode_id", StringType(), nullable=False),
        StructField("model", StringType(), nullable=False),
        StructField("text_sha256", StringType(), nullable=False),
        StructField("vector", ArrayType(FloatType()), nullable=False),
    ]
)

GOLD_EPISODE_SIMILARITY = StructType(
    [
        StructField("episode_id", StringType(), nullable=False),
        StructField("neighbor_episode_id", StringType(), nullable=False),
        StructField("similarity", DoubleType(), nullable=False),
        StructField("rank", IntegerType(), nullable=False),
    ]
)
