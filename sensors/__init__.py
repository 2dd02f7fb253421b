"""Sensors, one module each: ``kafka_lag`` requests ingestion when the events topic backs up."""
