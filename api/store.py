"""The API's read path over MongoDB: the active version, lists, neighbours and variants.

Versions are immutable once active (podrec.publish), so what is read from one can be cached for
as long as it serves; only the pointer to the active version is re-read, at most every
``version_cache_s`` seconds, so a publish or rollback shows within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from pymongo.database import Database

from podrec.publish import POINTER, collection
from podrec.recommendations import POPULAR_USER_PREFIX


class NoActiveVersion(LookupError):
    """Nothing has been published yet (or the pointer was removed)."""


class ServingStore:
    def __init__(self, db: Database, version_cache_s: float = 1.0, variant_cache_size: int = 200_000):
        self._db = db
        self._version_cache_s = version_cache_s
        self._variant_cache_size = variant_cache_size
        self._lock = threading.Lock()
        self._version: str | None = None
        self._read_at = 0.0
        self._variants: dict[str, list[dict[str, Any]]] = {}
        self._variants_of: str | None = None

    def ping(self) -> None:
        self._db.command("ping")

    def active_version(self) -> str:
        now = time.monotonic()
        if self._version is None or now - self._read_at >= self._version_cache_s:
            pointer = self._db[POINTER].find_one({"_id": "active"}, {"version": 1})
            if not pointer:
                raise NoActiveVersion("no MongoDB version is active yet: run the recommendations job")
            with self._lock:
                self._version, self._read_at = pointer["version"], now
        return self._version

    def user_list(self, version: str, user_id: str) -> dict[str, Any] | None:
        return self._db[collection("recommendations", version)].find_one({"user_id": user_id}, {"_id": 0})

    def popular_list(self, version: str, languages: Iterable[str]) -> dict[str, Any] | None:
        """The first language's popular list that exists, else any popular list."""
        recs = self._db[collection("recommendations", version)]
        for language in languages:
            doc = recs.find_one({"user_id": f"{POPULAR_USER_PREFIX}{language}"}, {"_id": 0})
            if doc is not None:
                return doc
        return recs.find_one({"fallback": True}, {"_id": 0})

    def episode(self, version: str, episode_id: str) -> dict[str, Any] | None:
        return self._db[collection("episodes", version)].find_one({"episode_id": episode_id}, {"_id": 0})

    def similar(self, version: str, episode_id: str) -> dict[str, Any] | None:
        return self._db[collection("similar", version)].find_one({"episode_id": episode_id}, {"_id": 0})

    def variants(self, version: str, canonical_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """Every language variant of each canonical episode; one query for those not cached yet."""
        with self._lock:
            if self._variants_of != version or len(self._variants) > self._variant_cache_size:
                self._variants, self._variants_of = {}, version
            cache = self._variants
        wanted = set(canonical_ids)
        missing = [c for c in wanted if c not in cache]
        if missing:
            found = self._db[collection("episodes", version)].find(
                {"canonical_episode_id": {"$in": missing}},
                {"_id": 0, "canonical_episode_id": 1, "variants": 1},
            )
            for doc in found:
                cache[doc["canonical_episode_id"]] = doc["variants"]
            for c in missing:  # remember absences too, so an unknown id costs one query per version
                cache.setdefault(c, [])
        return {c: cache[c] for c in wanted}
