"""The Dagster code location. Start at ``definitions.py``; assets live in one module per layer."""
