"""The daily partitioning every dated table shares, and the model window over it, from the settings.

Both come from the settings tree, so a deployment that moves the first day (an imported log from
1998) or the window (``PODREC_ALS_WINDOW_DAYS``) moves the fit and its declared inputs together.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import DailyPartitionsDefinition, TimeWindowPartitionMapping

from podrec.recsys.window import partition_start_offset
from podrec.settings import PodrecSettings


@dataclass(frozen=True)
class Calendar:
    daily: DailyPartitionsDefinition
    # A day's model reads the trailing window of engagement: the days before it are inputs too.
    model_window: TimeWindowPartitionMapping

    @classmethod
    def from_settings(cls, settings: PodrecSettings) -> Calendar:
        return cls(
            daily=DailyPartitionsDefinition(start_date=settings.partitions.start.isoformat()),
            model_window=TimeWindowPartitionMapping(
                start_offset=partition_start_offset(settings.als.window_days),
                # The first days' windows reach before partition one.
                allow_nonexistent_upstream_partitions=True,
            ),
        )


def partition_range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make one run cover the days ``first..last`` (what a single-run backfill sets):
    assets with a single-run backfill policy read every day of the range in that run."""
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
