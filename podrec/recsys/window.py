"""The trailing model window (docs/design.md, ALS): the ``days`` days of engagement ending on a date.

The fit, the lists, the serving gate's active listeners, the popularity drift and Dagster's
partition mapping all mean the same days, so they all ask this module.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column


def window_start(end: date, days: int) -> date:
    """First day of the window of ``days`` days ending on (and including) ``end``."""
    return end - timedelta(days=days - 1)


def partition_start_offset(days: int) -> int:
    """The window as an offset from the last partition (Dagster's ``TimeWindowPartitionMapping``)."""
    return -(days - 1)


def in_window(day: str, end: date | Column, days: int) -> Column:
    """Spark condition: column ``day`` falls in the window ending on ``end`` (a date or a date column)."""
    from pyspark.sql import functions as F

    if isinstance(end, date):
        return F.col(day).between(F.lit(window_start(end, days)), F.lit(end))
    return (F.col(day) <= end) & (F.col(day) >= F.date_sub(end, days - 1))
