"""Where episodes come from: the PodcastIndex API, or the bundled sample catalog offline.

Both are episode sources with one method, ``snapshot(day)``; ``build_resources`` picks the
API when a key is configured and the sample otherwise, so the asset never branches on it.
"""

from __future__ import annotations

import hashlib
import random
import time
from datetime import date
from typing import Any

import requests
from dagster import ConfigurableResource, get_dagster_logger

from podrec.content.podcastindex import ParseReport, episode_rows, sample_snapshot

RETRY_STATUS = {429, 500, 502, 503, 504}


class PodcastIndexError(RuntimeError):
    """The API refused or kept failing; the message never contains the key or secret."""


def auth_headers(api_key: str, api_secret: str, user_agent: str, now: int) -> dict[str, str]:
    """PodcastIndex's auth: ``Authorization`` is SHA-1 over key + secret + the X-Auth-Date epoch."""
    digest = hashlib.sha1(f"{api_key}{api_secret}{now}".encode()).hexdigest()
    return {
        "User-Agent": user_agent,
        "X-Auth-Key": api_key,
        "X-Auth-Date": str(now),
        "Authorization": digest,
    }


class EpisodeSource(ConfigurableResource):
    """Anything that can list the day's trending episodes as ``bronze.episodes`` rows."""

    @property
    def source_name(self) -> str:
        raise NotImplementedError

    def snapshot(self, day: date) -> tuple[list[dict[str, Any]], ParseReport]:
        raise NotImplementedError


class SampleCatalogResource(EpisodeSource):
    """The bundled catalog, shaped like PodcastIndex responses: the offline default."""

    def snapshot(self, day: date) -> tuple[list[dict[str, Any]], ParseReport]:
        return sample_snapshot(day)

    @property
    def source_name(self) -> str:
        return "sample"


class PodcastIndexResource(EpisodeSource):
    """The live PodcastIndex API. Key and secret come from the environment only."""

    base_url: str
    api_key: str
    api_secret: str
    user_agent: str = "podrec/0.1 (+https://github.com/podrec)"
    timeout_s: float = 15.0
    max_retries: int = 5
    backoff_s: float = 1.0
    trending_max: int = 40
    episodes_per_feed: int = 20

    @property
    def source_name(self) -> str:
        return "podcastindex"

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET with retries on 429, 5xx and timeouts (exponential backoff, jitter, Retry-After)."""
        url = f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"
        last_problem = ""
        for attempt in range(self.max_retries + 1):
            headers = auth_headers(self.api_key, self.api_secret, self.user_agent, int(time.time()))
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
            get_dagster_logger().warning(f"PodcastIndex {path}: {last_problem}, retrying in {delay:.1f}s")
            time.sleep(delay)
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
