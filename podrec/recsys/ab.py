"""A/B assignment: which policy a listener's list comes from, stable across processes and days."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

BUCKETS = 100


def bucket(user_id: str, experiment_id: str) -> int:
    """``H(user_id + experiment_id) mod 100`` with SHA-256, not Python's per-process salted ``hash()``,
    so a listener keeps their bucket in every process, on every machine, every day."""
    digest = hashlib.sha256(f"{user_id}{experiment_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


@dataclass(frozen=True)
class ABPolicy:
    """Buckets ``0 .. hybrid_buckets-1`` get ``hybrid``, the rest ``als_only``."""

    experiment_id: str = "hybrid-vs-als-1"
    hybrid_buckets: int = 50

    def __post_init__(self) -> None:
        if not 0 <= self.hybrid_buckets <= BUCKETS:
            raise ValueError(f"hybrid_buckets must be within 0..{BUCKETS}, got {self.hybrid_buckets}")

    def assign(self, user_id: str) -> tuple[int, str]:
        b = bucket(user_id, self.experiment_id)
        return b, "hybrid" if b < self.hybrid_buckets else "als_only"
