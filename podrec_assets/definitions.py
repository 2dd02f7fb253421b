"""The podrec code location: every asset, check, job, schedule, sensor and resource meets here."""

from dagster import Definitions, in_process_executor

from checks.drift_checks import drift_checks
from checks.expectation_checks import table_checks
from podrec.settings import load_settings
from podrec_assets.bronze import bronze_episodes, bronze_user_events, simulated_events
from podrec_assets.gold_content import gold_episode_embeddings, gold_episode_similarity
from podrec_assets.gold_recommender import gold_als_factors, gold_evaluation, gold_recommendations
from podrec_assets.jobs import (
    bronze_daily_job,
    bronze_daily_schedule,
    content_job,
    daily_job,
    daily_schedule,
    engagement_job,
    episode_catalog_job,
    evaluation_job,
    monitoring_job,
    recommendations_job,
    weekly_evaluation_schedule,
)
from podrec_assets.monitoring import monitoring_ab_analysis
from podrec_assets.serving import mongo_serving_version
from podrec_assets.silver import (
    silver_daily_engagement,
    silver_episodes,
    silver_transcripts,
    silver_user_events,
)
from resources import build_resources
from sensors.kafka_lag import build_kafka_lag_sensor, ingest_events_job

settings = load_settings()

defs = Definitions(
    assets=[
        bronze_episodes,
        bronze_user_events,
        simulated_events,
        silver_episodes,
        silver_transcripts,
        gold_episode_embeddings,
        gold_episode_similarity,
        silver_user_events,
        silver_daily_engagement,
        gold_als_factors,
        gold_recommendations,
        gold_evaluation,
        mongo_serving_version,
        monitoring_ab_analysis,
    ],
    asset_checks=[*table_checks, *drift_checks],
    jobs=[
        bronze_daily_job,
        episode_catalog_job,
        content_job,
        ingest_events_job,
        engagement_job,
        recommendations_job,
        evaluation_job,
        monitoring_job,
        daily_job,
    ],
    schedules=[bronze_daily_schedule, daily_schedule, weekly_evaluation_schedule],
    sensors=[build_kafka_lag_sensor(settings.kafka_lag_threshold, settings.kafka_max_age_s)],
    resources=build_resources(settings),
    # One process per run: Spark parallelises inside it, and a step per process would start a JVM each.
    executor=in_process_executor,
)
