"""The API's read path over MongoDB: the active version, then lists, neighbours and episodes by _id.

One request is one lookup by ``_id`` (the documents carry their items' language variants, see
podrec.serving.documents), plus the pointer to the active version, re-read at most every
``version_cache_s`` seconds, so a publish or rollback shows within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from pymongo.database import Database

from podrec.recsys.scoring import POPULAR_USER_PREFIX
from podrec.serving.publish import POINTER, collection


class NoActiveVersion(LookupError):
    """Nothing has been published yet (or the pointer was removed)."""


class ServingStore:
    def __init__(self, db: Database, version_cache_s: float = 1.0):
        self._db = db
        self._version_cache_s = version_cache_s
        self._lock = threading.Lock()
        self._version: str | None = None
        self._read_at = 0.0

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

    # Every read is by _id: the one lookup MongoDB and FerretDB both answer from an index.
    def user_list(self, version: str, user_id: str) -> dict[str, Any] | None:
        return self._db[collection("recommendations", version)].find_one({"_id": user_id})

    def popular_list(self, version: str, languages: Iterable[str]) -> dict[str, Any] | None:
        """The first language's popular list that exists, else any popular list."""
        recs = self._db[collection("recommendations", version)]
        for language in languages:
            doc = recs.find_one({"_id": f"{POPULAR_USER_PREFIX}{language}"})
            if doc is not None:
                return doc
        return recs.find_one({"fallback": True})

    def episode(self, version: str, episode_id: str) -> dict[str, Any] | None:
        return self._db[collection("episodes", version)].find_one({"_id": episode_id})

    def similar(self, version: str, episode_id: str) -> dict[str, Any] | None:
        return self._db[collection("similar", version)].find_one({"_id": episode_id})
