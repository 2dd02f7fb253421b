"""PodcastIndex responses → ``bronze.episodes`` rows.

The same parser reads the live API and the bundled sample catalog (which is shaped exactly
like the API's JSON), so the offline default exercises the real parsing path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import Any

UNDETERMINED = "und"  # BCP 47's tag for "language not known"

EPISODE_COLUMNS = [
    "episode_id", "feed_id", "podcast_guid", "title", "description", "feed_title",
    "language", "raw_language", "categories", "published_at", "duration_s",
    "enclosure_url", "transcript_url", "trend_score", "source", "ingest_date",
    # Beyond DESIGN.md's list: what language-variant matching needs (podrec/content/canonical.py).
    "episode_guid", "episode_number", "season",
]  # fmt: skip


def normalize_language(raw: str | None) -> str:
    """``en-US``, ``en_us``, ``EN`` → ``en``; ``pt-BR`` → ``pt``; empty or missing → ``und``."""
    if raw is None:
        return UNDETERMINED
    primary = raw.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary.isalpha() and 2 <= len(primary) <= 3 else UNDETERMINED


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
            "language": normalize_language(raw_language),
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
