"""A/B assignment: which policy a listener's list comes from, stable across processes and days."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from podrec.settings import AbSettings

if TYPE_CHECKING:
    from pyspark.sql import Column

BUCKETS = 100


def bucket(user_id: str, experiment_id: str) -> int:
    """``H(user_id + experiment_id) mod 100`` with SHA-256, not Python's per-process salted ``hash()``,
    so a listener keeps their bucket in every process, on every machine, every day."""
    digest = hashlib.sha256(f"{user_id}{experiment_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def assign(user_id: str, ab: AbSettings) -> tuple[int, str]:
    """(bucket, policy): buckets ``0 .. hybrid_buckets-1`` get ``hybrid``, the rest ``als_only``."""
    b = bucket(user_id, ab.experiment_id)
    return b, "hybrid" if b < ab.hybrid_buckets else "als_only"


def bucket_column(user_column: str, experiment_id: str) -> Column:
    """``bucket`` as a Spark column: the same SHA-256 prefix read as an unsigned 64-bit integer,
    mod 100, so a listener lands in the same bucket in Spark as in the API."""
    from pyspark.sql import functions as F

    digest = F.sha2(F.concat(F.col(user_column), F.lit(experiment_id)), 256)
    first_8_bytes = F.conv(F.substring(digest, 1, 16), 16, 10).cast("decimal(20,0)")
    return F.pmod(first_8_bytes, F.lit(BUCKETS)).cast("int")
