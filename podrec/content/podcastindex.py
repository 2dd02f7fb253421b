"""PodcastIndex: its HTTP API (``PodcastIndexClient``) and its responses → ``bronze.episodes`` rows.

The same parser reads the live API and the bundled sample catalog (which is shaped exactly
like the API's JSON), so the offline default exercises the real parsing path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time as clock
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import Any

import requests

from podrec.language import language_of

EPISODE_COLUMNS = [
    "episode_id", "feed_id", "podcast_guid", "title", "description", "feed_title",
    "language", "raw_language", "categories", "published_at", "duration_s",
    "enclosure_url", "transcript_url", "trend_score", "source", "ingest_date",
    # Beyond docs/design.md's list: what language-variant matching needs (podrec/content/canonical.py).
    "episode_guid", "episode_number", "season",
]  # fmt: skip


@dataclass
class ParseReport:
    """What parsing kept and dropped, for asset metadata."""

    feeds: int = 0
    episodes: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _int_or_none(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _transcript_url(item: dict[str, Any]) -> str | None:
    if item.get("transcriptUrl"):
        return item["transcriptUrl"]
    for transcript in item.get("transcripts") or []:
        if transcript.get("url"):
            return transcript["url"]
    return None


def episode_rows(
    feed: dict[str, Any],
    items: Iterable[dict[str, Any]],
    ingest_date: date,
    source: str,
    report: ParseReport,
) -> Iterator[dict[str, Any]]:
    """Rows for one trending feed and its episodes (``/episodes/byfeedid`` items)."""
    categories = sorted((feed.get("categories") or {}).values())
    feed_language = feed.get("language")
    for item in items:
        if item.get("id") is None:
            report.skip("missing episode id")
            continue
        published = item.get("datePublished")
        if published is None:
            report.skip("missing publish time")
            continue
        raw_language = item.get("feedLanguage") or feed_language
        report.episodes += 1
        yield {
            "episode_id": str(item["id"]),
            "feed_id": str(item.get("feedId") or feed.get("id")),
            "podcast_guid": feed.get("podcastGuid") or item.get("podcastGuid"),
            "title": (item.get("title") or "").strip(),
            "description": item.get("description") or "",
            "feed_title": feed.get("title") or "",
            "language": language_of(raw_language),
            "raw_language": raw_language,
            "categories": categories,
            "published_at": datetime.fromtimestamp(int(published), tz=UTC),
            "duration_s": _int_or_none(item.get("duration")),
            "enclosure_url": item.get("enclosureUrl"),
            "transcript_url": _transcript_url(item),
            "trend_score": float(feed.get("trendScore") or 0.0),
            "source": source,
            "ingest_date": ingest_date,
            "episode_guid": item.get("guid"),
            "episode_number": _int_or_none(item.get("episode")),
            "season": _int_or_none(item.get("season")),
        }


def sample_catalog() -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """The bundled catalog: trending feeds and, per feed id, its episode items."""
    root = resources.files("podrec") / "sample_data" / "podcastindex"
    trending = json.loads((root / "podcasts_trending.json").read_text())["feeds"]
    episodes = {
        str(feed["id"]): json.loads((root / f"episodes_byfeedid_{feed['id']}.json").read_text())["items"]
        for feed in trending
    }
    return trending, episodes


def sample_catalog_rows() -> list[dict[str, Any]]:
    """Every episode of the sample catalog, whatever its publish date (ingest_date: today)."""
    rows, _ = _sample_rows(date.today(), published_before=None)
    return rows


def sample_snapshot(ingest_date: date) -> tuple[list[dict[str, Any]], ParseReport]:
    """The sample catalog as PodcastIndex would have shown it on ``ingest_date``.

    Only episodes published by the end of that day exist yet, so consecutive days
    see new episodes arrive, as they would from the live API.
    """
    end_of_day = datetime.combine(ingest_date + timedelta(days=1), time(), tzinfo=UTC).timestamp()
    return _sample_rows(ingest_date, published_before=end_of_day)


def _sample_rows(
    ingest_date: date, published_before: float | None
) -> tuple[list[dict[str, Any]], ParseReport]:
    trending, episodes = sample_catalog()
    report = ParseReport(feeds=len(trending))
    rows: list[dict[str, Any]] = []
    for feed in trending:
        items = [
            i
            for i in episodes[str(feed["id"])]
            if published_before is None or (i.get("datePublished") or 0) < published_before
        ]
        rows.extend(episode_rows(feed, items, ingest_date, "sample", report))
    return rows, report


class PodcastIndexError(RuntimeError):
    """The API refused or kept failing; the message never contains the key or secret."""


RETRY_STATUS = {429, 500, 502, 503, 504}


def auth_headers(api_key: str, api_secret: str, user_agent: str, now: int) -> dict[str, str]:
    """PodcastIndex's auth: ``Authorization`` is SHA-1 over key + secret + the X-Auth-Date epoch."""
    digest = hashlib.sha1(f"{api_key}{api_secret}{now}".encode()).hexdigest()
    return {
        "User-Agent": user_agent,
        "X-Auth-Key": api_key,
        "X-Auth-Date": str(now),
        "Authorization": digest,
    }


@dataclass(frozen=True)
class PodcastIndexClient:
    """The live PodcastIndex API: retries on 429, 5xx and timeouts, errors that never show secrets."""

    base_url: str
    api_key: str
    api_secret: str
    user_agent: str = "podrec/0.1 (+https://github.com/podrec)"
    timeout_s: float = 15.0
    max_retries: int = 5
    backoff_s: float = 1.0
    trending_max: int = 40
    episodes_per_feed: int = 20
    warn: Callable[[str], None] = logging.getLogger(__name__).warning
    source_name: str = "podcastindex"

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET with retries on 429, 5xx and timeouts (exponential backoff, jitter, Retry-After)."""
        url = f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"
        last_problem = ""
        for attempt in range(self.max_retries + 1):
            headers = auth_headers(self.api_key, self.api_secret, self.user_agent, int(clock.time()))
            try:
                response = requests.get(url, params=params, headers=headers, timeout=self.timeout_s)
            except (requests.Timeout, requests.ConnectionError) as exc:
                last_problem = f"{type(exc).__name__}"
                wait = None
            else:
                if response.status_code == 200:
                    return response.json()
                if response.status_code not in RETRY_STATUS:
                    detail = response.text[:200]
                    raise PodcastIndexError(f"GET {path} → HTTP {response.status_code}: {detail}")
                last_problem = f"HTTP {response.status_code}"
                wait = _retry_after(response)
            if attempt == self.max_retries:
                break
            delay = wait if wait is not None else self.backoff_s * 2**attempt * (0.5 + random.random())
            self.warn(f"PodcastIndex {path}: {last_problem}, retrying in {delay:.1f}s")
            clock.sleep(delay)
        raise PodcastIndexError(f"GET {path} failed after {self.max_retries + 1} attempts: {last_problem}")

    def trending(self, max_feeds: int | None = None, lang: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"max": max_feeds or self.trending_max}
        if lang:
            params["lang"] = lang
        return self.get("podcasts/trending", params).get("feeds") or []

    def episodes_by_feed(self, feed_id: int | str, max_items: int | None = None) -> list[dict[str, Any]]:
        params = {"id": feed_id, "max": max_items or self.episodes_per_feed}
        return self.get("episodes/byfeedid", params).get("items") or []

    def recent_episodes(self, max_items: int = 100) -> list[dict[str, Any]]:
        return self.get("recent/episodes", {"max": max_items}).get("items") or []

    def snapshot(self, day: date) -> tuple[list[dict[str, Any]], ParseReport]:
        """Today's trending feeds and their latest episodes, labelled with ``day``.

        The API only knows the present: a backfill of a past day with this source records
        what is trending now. The sample source is the one that reproduces past days.
        """
        feeds = self.trending()
        report = ParseReport(feeds=len(feeds))
        rows: list[dict[str, Any]] = []
        for feed in feeds:
            if feed.get("id") is None:
                report.skip("feed without id")
                continue
            items = self.episodes_by_feed(feed["id"])
            rows.extend(episode_rows(feed, items, day, self.source_name, report))
        return rows, report


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None
