"""The API's read path over MongoDB: the active version, then lists, neighbours and episodes by _id.

One request is one lookup by ``_id`` (the documents carry their items' language variants, see
podrec.serving.documents), plus the pointer to the active version, re-read at most every
``version_cache_s`` seconds, so a publish or rollback shows within that time.

A published version never changes once it serves (podrec.serving.publish), so what was read from it
stays true while it serves: each document read is kept in memory, keyed by the version it came from, as
the BSON bytes the store sent (``DocumentCache``), and each id found missing in a second, bounded cache
of its own (``misses``), so that requests for made-up ids — each a miss — evict only other misses,
never a real list. A request only ever looks up keys of the version it resolved as active, so neither
cache can answer from another version; and when the pointer moves (a publish, a rollback, even back to
the same version) both are dropped.
FerretDB decodes a stored document on every read (≈ 1 to 3 ms for a 10-item list with variants); a hit
costs one BSON decode in the client (≈ 30 µs).

Every read takes ``memory_only``: with it, a read that would need MongoDB (a cache miss, or a pointer
due to be re-read) raises ``NotInMemory`` instead, so the API answers from memory on its event loop
and moves only the requests that must wait for MongoDB to a worker thread.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial
from typing import Any

import bson
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo.database import Database

from podrec.ids import POPULAR_USER_PREFIX
from podrec.serving.publish import POINTER, collection

Key = tuple[str, str, str]  # (version, kind, _id)
# What an entry costs besides its document: the key, the dict slot, the bytes object's header.
ENTRY_OVERHEAD = 256
_ANY_POPULAR = "\0any-popular"  # not a valid _id (api.lists.ID_PATTERN), so never a real document's key


def _size(raw: bytes | None) -> int:
    return ENTRY_OVERHEAD + (len(raw) if raw else 0)


class NoActiveVersion(LookupError):
    """Nothing has been published yet (or the pointer was removed)."""


class NotInMemory(Exception):
    """A ``memory_only`` read that needs MongoDB."""


class DocumentCache:
    """Documents by (version, kind, _id) as BSON bytes, or None for "not in this version", least
    recently used out beyond ``max_bytes`` (documents plus ENTRY_OVERHEAD each). Thread-safe."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Key, bytes | None] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, key: Key) -> tuple[bool, bytes | None]:
        """(found, document bytes or None)."""
        with self._lock:
            if key not in self._entries:
                return False, None
            self._entries.move_to_end(key)
            return True, self._entries[key]

    def put(self, key: Key, raw: bytes | None) -> None:
        if _size(raw) > self.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                self._bytes -= _size(self._entries.pop(key))
            self._entries[key] = raw
            self._bytes += _size(raw)
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= _size(evicted)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


class ServingStore:
    def __init__(
        self,
        db: Database,
        version_cache_s: float = 1.0,
        cache_bytes: int = 0,
        clock: Callable[[], float] = time.monotonic,
        miss_bytes: int = 0,
        observe: Callable[[str, str], None] = lambda kind, result: None,
    ):
        """``observe(kind, result)`` hears of every lookup: ``hit``, ``negative_hit`` (known missing) or
        ``miss`` (read from MongoDB). A request that leaves the event loop for a thread (``NotInMemory``)
        is heard again there, so a hit before its miss counts twice: rare, as a request reads one
        document, two only when a listener's list is replaced by the popular one."""
        self._db = db
        self._clock = clock
        self._raw_db = db.client.get_database(
            db.name, codec_options=db.codec_options.with_options(document_class=RawBSONDocument)
        )
        self._codec: CodecOptions = db.codec_options
        self._version_cache_s = version_cache_s
        self._lock = threading.Lock()
        self._version: str | None = None
        self._generation: tuple[str, Any] | None = None
        self._read_at = 0.0
        self.cache = DocumentCache(cache_bytes)
        self.misses = DocumentCache(miss_bytes)
        self._observe = observe
        # The exploration pool of each version: its episodes published since the first request's cut-off.
        self._pools: dict[str, tuple[datetime, list[dict[str, Any]]]] = {}

    def ping(self) -> None:
        self._db.command("ping")

    def active_version(self, memory_only: bool = False) -> str:
        now = self._clock()
        if self._version is None or now - self._read_at >= self._version_cache_s:
            if memory_only:
                raise NotInMemory("the active version is due to be re-read")
            pointer = self._db[POINTER].find_one({"_id": "active"}, {"version": 1, "since": 1})
            if not pointer:
                raise NoActiveVersion("no MongoDB version is active yet: run the recommendations job")
            # `since` changes on every activation, so re-activating the same name drops the cache too.
            generation = (pointer["version"], pointer.get("since"))
            with self._lock:
                if generation != self._generation:
                    self.cache.clear()
                    self.misses.clear()
                    self._pools.clear()
                self._version, self._generation, self._read_at = pointer["version"], generation, now
        return self._version

    def _document(
        self, version: str, kind: str, key: str, read: Callable[[], RawBSONDocument | None], memory_only: bool
    ) -> dict[str, Any] | None:
        """The document under ``key``, from the caches or, on a miss, from ``read`` (then kept)."""
        cache_key = (version, kind, key)
        found, raw = self.cache.get(cache_key)
        if found:
            self._observe(kind, "hit")
        elif self.misses.get(cache_key)[0]:
            self._observe(kind, "negative_hit")
            return None
        else:
            if memory_only:
                raise NotInMemory(f"{kind} {key} of {version} is not in memory")
            document = read()
            self._observe(kind, "miss")
            if document is None:
                self.misses.put(cache_key, None)
                return None
            raw = bytes(document.raw)
            self.cache.put(cache_key, raw)
        return None if raw is None else bson.decode(raw, codec_options=self._codec)

    def _by_id(self, version: str, kind: str, _id: str, memory_only: bool) -> dict[str, Any] | None:
        # Every read is by _id: the one lookup MongoDB and FerretDB both answer from an index.
        coll = self._raw_db[collection(kind, version)]
        return self._document(version, kind, _id, partial(coll.find_one, {"_id": _id}), memory_only)

    def user_list(self, version: str, user_id: str, memory_only: bool = False) -> dict[str, Any] | None:
        return self._by_id(version, "recommendations", user_id, memory_only)

    def popular_list(
        self, version: str, languages: Iterable[str], memory_only: bool = False
    ) -> dict[str, Any] | None:
        """The first language's popular list that exists, else any popular list."""
        for language in languages:
            doc = self._by_id(version, "recommendations", f"{POPULAR_USER_PREFIX}{language}", memory_only)
            if doc is not None:
                return doc
        recs = self._raw_db[collection("recommendations", version)]
        read_any = partial(recs.find_one, {"fallback": True})
        return self._document(version, "recommendations", _ANY_POPULAR, read_any, memory_only)

    def episode(self, version: str, episode_id: str, memory_only: bool = False) -> dict[str, Any] | None:
        return self._by_id(version, "episodes", episode_id, memory_only)

    def similar(self, version: str, episode_id: str, memory_only: bool = False) -> dict[str, Any] | None:
        return self._by_id(version, "similar", episode_id, memory_only)

    def new_episodes(self, version: str, since: datetime, memory_only: bool = False) -> list[dict[str, Any]]:
        """Episodes of ``version`` published at or after ``since``: read once per version (one query over
        the episodes collection), then filtered in memory as ``since`` moves on."""
        with self._lock:
            cached = self._pools.get(version)
        if cached is None or cached[0] > since:
            if memory_only:
                raise NotInMemory(f"the new episodes of {version} are not in memory")
            fields = dict.fromkeys(
                ("episode_id", "canonical_episode_id", "language", "title", "published_at"), 1
            )
            episodes = self._db[collection("episodes", version)]
            found = list(episodes.find({"published_at": {"$gte": since}}, fields))
            cached = (since, sorted(found, key=lambda e: e["episode_id"]))
            with self._lock:
                self._pools[version] = cached
        return [e for e in cached[1] if e["published_at"] >= since]
