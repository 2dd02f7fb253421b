"""Thresholds of the quality and drift checks, and where drift reports are kept."""

from __future__ import annotations

from dagster import ConfigurableResource

from podrec.lake.delta import table_uri
from podrec.settings import PodrecSettings


class MonitoringResource(ConfigurableResource):
    """Freshness, drift reference window and drift threshold; defaults in podrec/settings.py."""

    freshness_hours: float = 6.0
    reference_days: int = 7
    drift_share: float = 0.5

    @classmethod
    def from_settings(cls, s: PodrecSettings) -> MonitoringResource:
        return cls(
            freshness_hours=s.check_freshness_hours,
            reference_days=s.drift_reference_days,
            drift_share=s.drift_share,
        )

    @staticmethod
    def reports_root(lake_root: str) -> str:
        """Drift reports live in the lake, beside the tables they describe."""
        return table_uri(lake_root, "monitoring", "drift_reports")
