"""A/B assignment: which policy a listener's list comes from, stable across processes and days."""

from __future__ import annotations

import hashlib

from podrec.settings import AbSettings

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
