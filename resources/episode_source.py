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
from podrec.settings import load_settings


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
    """The live PodcastIndex API. Key and secret are no config fields: they are read from the settings
    (the environment or ``PODREC_SECRETS_DIR``) when the client is made, so Dagster never holds them."""

    base_url: str
    timeout_s: float = 15.0
    max_retries: int = 5
    backoff_s: float = 1.0

    @property
    def source_name(self) -> str:
        return "podcastindex"

    def client(self) -> PodcastIndexClient:
        credentials = load_settings().podcastindex
        if credentials.api_key is None or credentials.api_secret is None:
            raise RuntimeError(
                "PODREC_PODCASTINDEX_API_KEY and _API_SECRET are no longer set: set them, or reload the code "
                "location to use the sample catalog"
            )
        return PodcastIndexClient(
            base_url=self.base_url, api_key=credentials.api_key.get_secret_value(),
            api_secret=credentials.api_secret.get_secret_value(),
            timeout_s=self.timeout_s,
            max_retries=self.max_retries, backoff_s=self.backoff_s, warn=get_dagster_logger().warning,
        )  # fmt: skip

    def snapshot(self, day: date) -> tuple[list[dict[str, Any]], ParseReport]:
        return self.client().snapshot(day)
