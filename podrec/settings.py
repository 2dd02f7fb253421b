"""The one typed settings object podrec reads its deployment from.

Every field is an environment variable with the ``PODREC_`` prefix (``lake_uri`` →
``PODREC_LAKE_URI``) and may also be set in an optional TOML file named by
``PODREC_CONFIG_FILE`` (default ``podrec.toml`` in the working directory). The
environment wins over the file. Secrets are ``SecretStr`` so they never print.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _config_file() -> Path:
    return Path(os.environ.get("PODREC_CONFIG_FILE", "podrec.toml"))


class PodrecSettings(BaseSettings):
    """Deployment settings. Defaults run everything on one machine."""

    model_config = SettingsConfigDict(env_prefix="PODREC_", extra="ignore", frozen=True)

    # Lake and Spark
    lake_uri: str = Field(
        "./data/lakehouse",
        description="Root of the Delta lake: a local path or an object-store URI (s3a://bucket/lake).",
    )
    spark_master: str = Field("local[*]", description="Spark master URL (spark://host:7077, yarn…).")
    spark_conf: dict[str, str] = Field(
        default_factory=dict,
        description="Extra Spark settings as JSON, e.g. s3a credentials providers or executor memory.",
    )
    spark_driver_memory: str = Field("4g", description="Driver memory for local runs.")
    spark_shuffle_partitions: int = Field(8, description="spark.sql.shuffle.partitions.")

    # Kafka
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    kafka_events_topic: str = Field("podrec.ingest.events", description="Topic carrying user events.")
    kafka_consumer_group: str = Field("podrec-bronze", description="Group whose offsets track ingestion.")
    kafka_lag_threshold: int = Field(
        10_000, description="Sensor: request ingestion at this many events behind."
    )
    kafka_max_age_s: int = Field(900, description="Sensor: or when the oldest unread event is this old.")
    kafka_controller_port: int = Field(9093, description="KRaft controller port of the local broker.")

    # MongoDB (serving store)
    mongo_uri: SecretStr = Field(
        SecretStr("mongodb://127.0.0.1:27017/"),
        description="MongoDB connection string; may hold credentials, so it is treated as a secret.",
    )
    mongo_database: str = Field("podrec", description="Database podrec publishes into.")

    # PodcastIndex
    podcastindex_base_url: str = Field("https://api.podcastindex.org/api/1.0")
    podcastindex_api_key: SecretStr | None = Field(None, description="Environment only.")
    podcastindex_api_secret: SecretStr | None = Field(None, description="Environment only.")

    # Models
    vosk_model_dir: str = Field("./data/models/vosk", description="One Vosk model folder per language.")

    # Engagement (silver.daily_engagement): score = listen·max_completion + complete·[completed]
    # + like·[liked] + replay·min(plays - 1, 3); an early skip scores early_skip instead.
    engagement_listen_weight: float = Field(1.0, description="Per unit of the furthest point reached.")
    engagement_complete_weight: float = Field(1.0, description="Bonus for reaching 95% or a complete.")
    engagement_like_weight: float = Field(2.0, description="Bonus for a like that was not taken back.")
    engagement_replay_weight: float = Field(0.25, description="Per extra play that day (up to 3).")
    engagement_early_skip_weight: float = Field(
        -1.0, description="Score of a skip before early_skip_fraction: a confident negative."
    )
    early_skip_fraction: float = Field(0.05, description="A skip before this share of the episode is early.")
    bot_max_events_per_day: int = Field(
        3000, description="silver.user_events drops a user's day above this many events as a bot."
    )

    # ALS (gold.als_factors)
    als_alpha: float = Field(40.0, description="Confidence scale: c = 1 + alpha·|engagement|.")
    als_reg_param: float = Field(0.08, description="L2 regularisation.")
    als_rank: int = Field(32, description="Latent factors.")
    als_max_iter: int = Field(10, description="Alternations.")
    als_blocks: int = Field(4, description="User and item blocks (parallelism of a fit).")
    als_window_days: int = Field(28, description="Trailing days of daily engagement one fit learns from.")

    # Hybrid recommendations (gold.recommendations)
    hybrid_als_weight: float = Field(0.7, description="w_als; content gets 1 - w_als.")
    cold_start_strategy: str = Field(
        "auto",
        description=(
            "factor | literal | reserved | fixed (DESIGN.md, cold start), or auto: the latest evaluation's "
            "pick (best new-episode recall within 2% NDCG of als_only), factor until one exists."
        ),
    )
    cold_start_full_weight_listeners: int = Field(
        20, description="Listeners an episode needs before it is scored on its own factors alone."
    )
    cold_start_prior_neighbors: int = Field(20, description="Content neighbours a new episode's prior uses.")
    recommendations_k: int = Field(10, description="Length of each list.")
    recommendations_candidates: int = Field(200, description="Top ALS candidates joined to content ones.")
    per_show_cap: int = Field(3, description="At most this many episodes of one show in a list.")
    fallback_language: str = Field("en", description="Variant language when none is in the user's.")

    # A/B
    experiment_id: str = Field("hybrid-vs-als-1", description="Salt of the sticky bucket hash.")
    ab_hybrid_buckets: int = Field(50, description="Buckets 0..N-1 get hybrid, the rest als_only.")

    # Quality checks and drift (checks/)
    check_freshness_hours: float = Field(
        6.0, description="A day's events are fresh if the newest is within this many hours of its end."
    )
    drift_reference_days: int = Field(
        7, description="Days before the checked one that form its drift reference window."
    )
    drift_share: float = Field(
        0.5, description="A drift check warns when at least this share of its columns drifted."
    )

    # Publishing to MongoDB
    publish_retention: int = Field(
        3, description="Passed versions kept (besides the active one and its predecessor)."
    )
    publish_min_share_of_previous: float = Field(
        0.5, description="Gate: a version must list at least this share of the active version's users."
    )

    # Recommendation API (podrec serve)
    api_mongo_timeout_ms: int = Field(
        1000, description="How long a request waits for MongoDB before the API answers 503."
    )
    api_version_cache_s: float = Field(
        1.0, description="How long the API trusts the active version it read; a switch shows within this."
    )

    # Local infrastructure and caches
    data_dir: str = Field("./data", description="Where local services keep their state.")
    cache_dir: str = Field(
        str(Path.home() / ".cache" / "podrec"),
        description="Jars and binaries fetched by infra/setup.sh.",
    )
    partitions_start: str = Field("2026-11-01", description="First daily partition.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if _config_file().is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=_config_file()))
        return tuple(sources)

    @property
    def lake_root(self) -> str:
        """The lake URI with local paths made absolute, so every process agrees on it."""
        if "://" in self.lake_uri:
            return self.lake_uri.rstrip("/")
        return str(Path(self.lake_uri).expanduser().resolve())

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def audio_path(self) -> Path:
        """Downloaded (or locally synthesised) episode audio, one file per episode id."""
        return self.data_path / "audio"

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir).expanduser().resolve()

    def public_view(self) -> dict[str, Any]:
        """Settings safe to print or attach as metadata: secrets are masked."""
        view = {k: ("**********" if isinstance(v, SecretStr) else v) for k, v in self.model_dump().items()}
        view["mongo_uri"] = redact_uri(self.mongo_uri.get_secret_value())
        return view


def redact_uri(uri: str) -> str:
    """``mongodb://user:pw@host/`` → ``mongodb://***@host/``: where, without who."""
    scheme, sep, rest = uri.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return uri
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


def load_settings(**overrides: Any) -> PodrecSettings:
    """Read settings from the environment (and the optional file), with explicit overrides."""
    return PodrecSettings(**overrides)
