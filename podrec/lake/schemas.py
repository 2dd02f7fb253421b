"""Spark schemas of podrec's Delta tables, in the column order docs/design.md lists."""

from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
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
        StructField("impression_id", StringType()),
        StructField("received_at", TimestampType(), nullable=False),
        StructField("kafka_partition", IntegerType(), nullable=False),
        StructField("kafka_offset", LongType(), nullable=False),
        StructField("event_date", DateType(), nullable=False),
        StructField("error", StringType()),
        StructField("raw", BinaryType()),
    ]
)

# impression_id is optional and came later: Delta schema evolution adds it as the last column.
BRONZE_USER_EVENTS_COLUMNS = [
    "event_id", "user_id", "episode_id", "event_type", "position_s", "episode_duration_s",
    "session_id", "locale", "device", "occurred_at", "received_at", "kafka_partition",
    "kafka_offset", "event_date", "impression_id",
]  # fmt: skip

# One served item of an impression; propensity and explored only where exploration is on.
IMPRESSION_ITEM = StructType(
    [
        StructField("episode_id", StringType(), nullable=False),
        StructField("rank", IntegerType(), nullable=False),
        StructField("propensity", DoubleType()),
        StructField("explored", BooleanType()),
    ]
)

# One consumed impression record after validation (podrec.ingest.impressions), before the split.
VALIDATED_IMPRESSION = StructType(
    [
        StructField("impression_id", StringType()),
        StructField("user_id", StringType()),
        StructField("served_version", StringType()),
        StructField("experiment_id", StringType()),
        StructField("bucket", IntegerType()),
        StructField("policy", StringType()),
        StructField("source", StringType()),
        StructField("locale", StringType()),
        StructField("model_version", StringType()),
        StructField("served_at", TimestampType()),
        StructField("items", ArrayType(IMPRESSION_ITEM)),
        StructField("received_at", TimestampType(), nullable=False),
        StructField("kafka_partition", IntegerType(), nullable=False),
        StructField("kafka_offset", LongType(), nullable=False),
        StructField("event_date", DateType(), nullable=False),
        StructField("error", StringType()),
        StructField("raw", BinaryType()),
    ]
)

BRONZE_IMPRESSIONS_COLUMNS = [f.name for f in VALIDATED_IMPRESSION.fields if f.name not in ("error", "raw")]

# silver.impressions: one row per served item, keyed by (impression_id, rank).
SILVER_IMPRESSIONS = StructType(
    [
        StructField("impression_id", StringType(), nullable=False),
        StructField("user_id", StringType(), nullable=False),
        StructField("served_version", StringType(), nullable=False),
        StructField("experiment_id", StringType(), nullable=False),
        StructField("bucket", IntegerType(), nullable=False),
        StructField("policy", StringType(), nullable=False),
        StructField("source", StringType()),
        StructField("locale", StringType()),
        StructField("served_at", TimestampType(), nullable=False),
        StructField("list_length", IntegerType(), nullable=False),
        StructField("rank", IntegerType(), nullable=False),
        StructField("episode_id", StringType(), nullable=False),
        StructField("propensity", DoubleType()),
        StructField("explored", BooleanType()),
        StructField("event_date", DateType(), nullable=False),
    ]
)

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

SILVER_DAILY_ENGAGEMENT = StructType(
    [
        StructField("user_id", StringType(), nullable=False),
        StructField("episode_id", StringType(), nullable=False),
        StructField("plays", LongType()),
        StructField("listen_seconds", DoubleType()),
        StructField("max_completion", DoubleType()),
        StructField("likes", LongType()),
        StructField("skips", LongType()),
        StructField("early_skip", BooleanType()),
        StructField("engagement", DoubleType()),
        StructField("confidence", DoubleType()),
        StructField("locale", StringType()),
        StructField("event_date", DateType(), nullable=False),
    ]
)

# Both sides of one ALS fit: side is "user" or "item", id the user_id or episode_id.
GOLD_ALS_FACTORS = StructType(
    [
        StructField("side", StringType(), nullable=False),
        StructField("id", StringType(), nullable=False),
        StructField("factors", ArrayType(FloatType()), nullable=False),
        StructField("interactions", LongType(), nullable=False),
        StructField("model_version", StringType(), nullable=False),
        StructField("model_date", DateType(), nullable=False),
    ]
)

GOLD_RECOMMENDATIONS = StructType(
    [
        StructField("user_id", StringType(), nullable=False),
        StructField("rank", IntegerType(), nullable=False),
        StructField("episode_id", StringType(), nullable=False),
        StructField("canonical_episode_id", StringType(), nullable=False),
        StructField("score", DoubleType(), nullable=False),
        StructField("als_score", DoubleType()),
        StructField("content_score", DoubleType()),
        StructField("policy", StringType(), nullable=False),
        StructField("reason", StringType(), nullable=False),
        StructField("bucket", IntegerType()),
        StructField("experiment_id", StringType()),
        StructField("locale", StringType()),
        StructField("model_version", StringType(), nullable=False),
        StructField("rec_date", DateType(), nullable=False),
    ]
)

GOLD_EVALUATION = StructType(
    [
        StructField("protocol", StringType(), nullable=False),
        StructField("policy", StringType(), nullable=False),
        StructField("cold_start", StringType(), nullable=False),
        StructField("metric", StringType(), nullable=False),
        StructField("k", IntegerType(), nullable=False),
        StructField("value", DoubleType()),
        StructField("users", IntegerType()),
        StructField("params", StringType()),
        StructField("evaluated_at", TimestampType(), nullable=False),
        StructField("eval_date", DateType(), nullable=False),
    ]
)

GOLD_TUNING = StructType(
    [
        StructField("protocol", StringType(), nullable=False),
        StructField("k", IntegerType(), nullable=False),
        StructField("margin", DoubleType(), nullable=False),
        StructField("incumbent", StringType(), nullable=False),  # JSON of podrec.recsys.tuning.Setting
        StructField("challenger", StringType(), nullable=False),
        StructField("serving", StringType(), nullable=False),  # what serves from this decision on
        StructField("incumbent_ndcg", DoubleType(), nullable=False),
        StructField("challenger_ndcg", DoubleType(), nullable=False),
        StructField("accepted", BooleanType(), nullable=False),
        StructField("reason", StringType(), nullable=False),
        StructField("trials", StringType(), nullable=False),  # JSON: every setting measured
        StructField("users", IntegerType()),
        StructField("tuned_at", TimestampType(), nullable=False),
        StructField("tuned_date", DateType(), nullable=False),
    ]
)


def _project(schema: StructType, columns: list[str]) -> StructType:
    by_name = {f.name: f for f in schema.fields}
    return StructType([by_name[c] for c in columns])


# The columns of each contract table whose schema podrec declares, by ``layer/name``: what Dagster's
# catalog shows for the table's asset (podrec_assets.catalog), checked against the written tables in
# tests/integration/test_recommendations.py.
TABLE_SCHEMAS: dict[str, StructType] = {
    "bronze/episodes": BRONZE_EPISODES,
    "bronze/user_events": _project(VALIDATED_RECORD, BRONZE_USER_EVENTS_COLUMNS),
    "bronze/impressions": _project(VALIDATED_IMPRESSION, BRONZE_IMPRESSIONS_COLUMNS),
    "silver/impressions": SILVER_IMPRESSIONS,
    "silver/transcripts": SILVER_TRANSCRIPTS,
    "silver/daily_engagement": SILVER_DAILY_ENGAGEMENT,
    "gold/episode_embeddings": GOLD_EPISODE_EMBEDDINGS,
    "gold/episode_similarity": GOLD_EPISODE_SIMILARITY,
    "gold/als_factors": GOLD_ALS_FACTORS,
    "gold/recommendations": GOLD_RECOMMENDATIONS,
    "gold/evaluation": GOLD_EVALUATION,
    "gold/tuning": GOLD_TUNING,
}
