"""Sensors: Kafka consumer lag and new-episode arrival (see the ingestion issue)."""
