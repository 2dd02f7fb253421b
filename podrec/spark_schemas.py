"""Spark schemas of podrec's Delta tables, in the column order DESIGN.md lists."""

from pyspark.sql.types import (
    ArrayType,
    DateType,
    DoubleType,
    IntegerType,
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
    ]
)
