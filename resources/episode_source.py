"""Where episodes come from: the PodcastIndex API, or the bundled sample catalog offline.

Both are episode sources with one method, ``snapshot(day)``; ``build_resources`` picks the
API when a key is configured and the sample otherwise, so the asset never branches on it. The
HTTP client and the parsing are plain library code (podrec/content/podcastindex.py).
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import date
from typing import Any

from dagster import ConfigurableResource, get_dagster_logger

from podrec.content.podcastindex import ParseReport, PodcastIndexClient, sample_snapshot
from podrec.content.synthetic import synthetic_catalog


class EpisodeSource(ConfigurableResource):
    """Anything that can list the day's trending episodes as ``bronze.episodes`` rows."""

    @property
    @abstractmethod
    def source_name(self) -> str:
        """What ``bronze.episodes.source`` says about rows from here."""

    @abstractmethod
    def snapshot(self, day: date) -> tuple[list[dict[str, Any]], ParseReport]:
        """The day's trending episodes as rows, and what parsing skipped."""


class SampleCatalogResource(EpisodeSource):
    """The bundled catalog, shaped like PodcastIndex responses: the offline default."""

    def snapshot(self, day: date) -> tuple[list[dict[str, Any]], ParseReport]:
        return sample_snapshot(day)

    @property
    def source_name(self) -> str:
        return "sample"


class SyntheticCatalogResource(EpisodeSource):
    """A generated catalog of any size (podrec/content/synthetic.py): the same catalog for the same
    size and seed, with episodes arriving every day after ``start``."""

    episodes: int
    shows: int
    seed: int
    start: str  # ISO date: the first daily partition

    def snapshot(self, day: date) -> tuple[list[dict[str, Any]], ParseReport]:
        catalog = synthetic_catalog(self.episodes, self.shows, self.seed, date.fromisoformat(self.start))
        return catalog.snapshot(day, self.source_name)

    @property
    def source_name(self) -> str:
        return "synthetic"


class PodcastIndexResource(EpisodeSource):
    """The live PodcastIndex API. Key and secret come from the environment only."""

    base_url: str
    api_key: str
    api_secret: str
    timeout_s: float = 15.0
    max_retries: int = 5
    backoff_s: float = 1.0

    @property
    def source_name(self) -> str:
        return "podcastindex"

    def client(self) -> PodcastIndexClient:
        return PodcastIndexClient(
            base_url=self.base_url, api_key=self.api_key, api_secret=self.api_secret,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries, backoff_s=self.backoff_s, warn=get_dagster_logger().warning,
        )  # fmt: skip

    def snapshot(self, day: date) -> tuple[list[dict[str, Any]], ParseReport]:
        return self.client().snapshot(day)
