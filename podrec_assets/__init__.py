"""The Dagster code location. Start at ``definitions.py``; assets live in one module per layer."""

import warnings

from dagster import BetaWarning, PreviewWarning

# Backfill policies and partitioned asset checks are used on purpose: silence Dagster's
# beta/preview notices for them here, before any asset module is imported.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)
