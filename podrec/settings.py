"""The one settings tree podrec reads its deployment and its knobs from.

Each section is a model whose fields are the knobs' only names and defaults: ``settings.als.alpha``
is ``PODREC_ALS_ALPHA`` in the environment, ``[als] alpha`` in the optional TOML file, and
``als.alpha`` in the code that fits the model. The environment wins over the file
(``PODREC_CONFIG_FILE``, default ``podrec.toml`` in the working directory). Secrets are
``SecretStr`` so they never print, and they come from the environment only: the file may not
hold them, but a secrets directory may (``PODREC_SECRETS_DIR``: one file per secret, named like its
variable, as Docker and Kubernetes mount them). Nothing here is read at import time;
``load_settings()`` reads once, when called.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from podrec.ingest.events import RecordLimits

PREFIX = "PODREC_"
COLD_START_STRATEGIES = ("factor", "literal", "reserved", "fixed")
KafkaSecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
# Who a Kafka client is: the event producer (simulate, import-events, the simulation asset, kcat), the API
# (impressions), ingestion (both topics and its consumer group, and the lag sensor that watches it).
KafkaRole = Literal["producer", "api", "ingest"]
KAFKA_ROLES: tuple[KafkaRole, ...] = ("producer", "api", "ingest")


class Section(BaseModel):
    """A frozen group of settings; unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def updated(self, **changes: Any) -> Self:
        """A validated copy with ``changes`` (a run's overrides go through the same range checks)."""
        return self.model_validate({**self.model_dump(), **changes})

    def fingerprint(self) -> str:
        """A short digest of the values: what a table built by these rules records, so that a rule
        changed later marks it out of date (a Dagster code version)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]


class LakeSettings(Section):
    uri: str = Field(
        "./data/lakehouse",
        description="Root of the Delta lake: a local path or an object-store URI (s3a://bucket/lake).",
    )

    s3_endpoint: str | None = Field(
        None,
        description=(
            "An S3-API store that is not AWS itself (http://127.0.0.1:18333, MinIO, SeaweedFS): Spark's "
            "s3a and delta-rs both go there. Credentials stay in the standard AWS_* variables."
        ),
    )
    commit_lock: SecretStr | None = Field(
        None,
        description=(
            "postgresql://user:password@host:port/db whose advisory locks let one writer at a time commit "
            "to a table of an object-store lake, across processes and machines (podrec/lake/commit_lock.py); "
            "a secret (environment or PODREC_SECRETS_DIR). Unset there, the deployment's own Delta log "
            "stores must serialise concurrent writers; a local lake never needs it."
        ),
    )
    commit_lock_wait_s: float = Field(
        600.0, gt=0, le=86_400,
        description="How long a write waits for another writer of the same table before failing, naming it.",
    )  # fmt: skip

    @property
    def root(self) -> str:
        """The lake URI with local paths made absolute, so every process agrees on it."""
        if "://" in self.uri:
            return self.uri.rstrip("/")
        return str(Path(self.uri).expanduser().resolve())

    @property
    def on_object_store(self) -> bool:
        return self.root.startswith(("s3a://", "s3://"))


class SparkSettings(Section):
    master: str = Field("local[*]", description="Spark master URL (spark://host:7077, yarn…).")
    conf: dict[str, str] = Field(
        default_factory=dict,
        description="Extra Spark settings as JSON, e.g. s3a credentials providers or executor memory.",
    )
    driver_memory: str = Field("4g", description="Driver memory for local runs.")
    shuffle_partitions: int = Field(8, ge=1, description="spark.sql.shuffle.partitions.")
    checkpoint_dir: str | None = Field(
        None,
        description=(
            "Where ALS checkpoints its factors every 10 iterations, a path every executor reaches "
            "(unset: <lake>/_checkpoints for any master but local[*], which has no executor to lose)."
        ),
    )
    # A spark:// master on this machine is started by `podrec infra up` as a standalone cluster.
    workers: int = Field(2, ge=1, le=16, description="Workers of a standalone master on this machine.")
    worker_cores: int = Field(1, ge=1, description="Cores each of those workers offers.")
    worker_memory: str = Field("2g", description="Memory each of those workers offers its executors.")
    ui_port: int = Field(
        8080, ge=1, le=65535, description="Web UI and /json/ status port of that standalone master."
    )
    auth_secret: SecretStr | None = Field(
        None,
        description=(
            "The shared secret of spark.authenticate: a standalone master accepts only workers and drivers "
            "that hold it. Set, every driver podrec starts presents it, and `podrec infra up` starts its "
            "master and workers requiring it; a secret (environment or PODREC_SECRETS_DIR)."
        ),
    )


class KafkaSettings(Section):
    bootstrap: str = Field("127.0.0.1:9092", min_length=1, description="Kafka bootstrap servers.")
    events_topic: str = Field("podrec.events", min_length=1, description="Topic carrying user events.")
    impressions_topic: str = Field(
        "podrec.impressions", min_length=1, description="Topic carrying the lists the API served."
    )
    consumer_group: str = Field("podrec-bronze", description="Group whose offsets track ingestion.")
    lag_threshold: int = Field(
        10_000, ge=1, description="Sensor: request ingestion at this many events behind."
    )
    max_age_s: int = Field(900, ge=0, description="Sensor: or when the oldest unread event is this old.")
    controller_port: int = Field(
        9093, ge=1, le=65535, description="KRaft controller port of the local broker."
    )
    timeout_s: float = Field(
        5.0, ge=1, le=120, description="How long a command waits for the broker to answer before giving up."
    )
    delivery_timeout_s: float = Field(
        60.0,
        ge=1,
        le=3600,
        description="How long a produced event may wait for the broker's acknowledgement.",
    )
    security_protocol: KafkaSecurityProtocol = Field(
        "PLAINTEXT", description="How every client talks to the brokers (SASL_* needs the sasl_* settings)."
    )
    sasl_mechanism: KafkaSaslMechanism | None = Field(
        None, description="SASL mechanism; required with SASL_PLAINTEXT and SASL_SSL."
    )
    sasl_username: str | None = Field(
        None,
        min_length=1,
        description=(
            "SASL user; required with SASL_*. Every client whose role has no user of its own logs in as it; "
            "on a broker `podrec infra up` starts, it is the brokers' own user and the only super user."
        ),
    )
    sasl_password: SecretStr | None = Field(
        None, description="SASL password; a secret (environment or PODREC_SECRETS_DIR only)."
    )
    # One user per role (KafkaRole), each with the ACLs of its role alone; unset, the role logs in as
    # sasl_username. Each pair is set together.
    producer_sasl_username: str | None = Field(
        None,
        min_length=1,
        description="The event producer's user (simulate, import-events, kcat): writes the events topic.",
    )
    producer_sasl_password: SecretStr | None = Field(
        None, description="Its password; a secret (environment or PODREC_SECRETS_DIR only)."
    )
    api_sasl_username: str | None = Field(
        None, min_length=1, description="The API's user: writes the impressions topic only."
    )
    api_sasl_password: SecretStr | None = Field(
        None, description="Its password; a secret (environment or PODREC_SECRETS_DIR only)."
    )
    ingest_sasl_username: str | None = Field(
        None,
        min_length=1,
        description="Ingestion's user (and the lag sensor's): reads both topics, commits consumer_group.",
    )
    ingest_sasl_password: SecretStr | None = Field(
        None, description="Its password; a secret (environment or PODREC_SECRETS_DIR only)."
    )

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    def credential(self, role: KafkaRole | None = None) -> tuple[str, SecretStr]:
        """The SASL user and password a client of ``role`` logs in with: the role's own pair when it has
        one, else ``sasl_username`` / ``sasl_password`` (also what ``role=None`` asks for)."""
        user, password = self.sasl_username, self.sasl_password
        if role is not None and getattr(self, f"{role}_sasl_username") is not None:
            user, password = getattr(self, f"{role}_sasl_username"), getattr(self, f"{role}_sasl_password")
        if user is None or password is None:  # refused by _sasl_complete; this narrows the types
            raise ValueError("SASL needs PODREC_KAFKA_SASL_USERNAME and PODREC_KAFKA_SASL_PASSWORD")
        return user, password

    @model_validator(mode="after")
    def _sasl_complete(self) -> Self:
        """SASL without its user, password or mechanism cannot connect; SASL settings without a SASL
        protocol would be ignored silently, so both are refused here, before any client is made. A role's
        user without its password (or the reverse) is refused too, rather than mixed with the default's."""
        given = {
            "PODREC_KAFKA_SASL_MECHANISM": self.sasl_mechanism,
            "PODREC_KAFKA_SASL_USERNAME": self.sasl_username,
            "PODREC_KAFKA_SASL_PASSWORD": self.sasl_password,
        }
        roles = {
            secret_variable("kafka", f"{role}_sasl_{part}"): getattr(self, f"{role}_sasl_{part}")
            for role in KAFKA_ROLES
            for part in ("username", "password")
        }
        if self.sasl:
            missing = [name for name, value in given.items() if value is None]
            if missing:
                raise ValueError(
                    f"PODREC_KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs {', '.join(missing)}"
                )
            for role in KAFKA_ROLES:
                user, password = (
                    secret_variable("kafka", f"{role}_sasl_username"),
                    secret_variable("kafka", f"{role}_sasl_password"),
                )
                if (roles[user] is None) != (roles[password] is None):
                    alone, other = (user, password) if roles[password] is None else (password, user)
                    raise ValueError(f"{alone} set without {other}: set both, or neither")
        else:
            given |= roles
            stray = [name for name, value in given.items() if value is not None]
            if stray:
                raise ValueError(
                    f"{', '.join(stray)} set, but PODREC_KAFKA_SECURITY_PROTOCOL={self.security_protocol} "
                    "uses no SASL: set it to SASL_PLAINTEXT or SASL_SSL, or unset them"
                )
        return self


class MongoSettings(Section):
    uri: SecretStr = Field(
        SecretStr("mongodb://127.0.0.1:27017/"),
        description="MongoDB connection string; may hold credentials, so it is a secret (environment only).",
    )
    database: str = Field("podrec", min_length=1, description="Database podrec publishes into.")
    local_backend: Literal["sqlite", "postgresql"] = Field(
        "sqlite",
        description=(
            "What the FerretDB `infra up` starts stores in: SQLite (no authentication) or a PostgreSQL "
            "it starts too, which then requires the user and password of PODREC_MONGO_URI."
        ),
    )


class ObjectStoreSettings(Section):
    """The S3-API store (SeaweedFS) `infra up` starts for an s3a:// lake whose endpoint is on loopback;
    its S3 port is the endpoint's, these are the ports of the parts behind it."""

    master_port: int = Field(19333, ge=1, le=55535, description="Its master (gRPC on this + 10000).")
    volume_port: int = Field(18080, ge=1, le=55535, description="Its volume server (gRPC on this + 10000).")
    filer_port: int = Field(18888, ge=1, le=55535, description="Its filer (gRPC on this + 10000).")


class PostgresSettings(Section):
    port: int = Field(
        55432, ge=1, le=65535, description="Port of the PostgreSQL `infra up` starts (FerretDB, Dagster)."
    )


class PodcastIndexSettings(Section):
    base_url: str = Field("https://api.podcastindex.org/api/1.0", description="PodcastIndex API.")
    api_key: SecretStr | None = Field(None, description="Secret (environment only); unset → sample catalog.")
    api_secret: SecretStr | None = Field(None, description="Secret (environment only).")


class SyntheticSettings(Section):
    """The synthetic catalog's size (``PODREC_CATALOG=synthetic``; podrec/content/synthetic.py)."""

    episodes: int = Field(
        2000, ge=1, description="Episodes in the synthetic catalog (translations included)."
    )
    shows: int = Field(100, ge=1, description="Shows (feeds) they belong to.")
    seed: int = Field(7, description="Same seed and size, same catalog.")


class VoskSettings(Section):
    model_dir: str = Field("./data/models/vosk", description="One Vosk model folder per language.")


class AudioSettings(Section):
    """Bounds on fetching episode audio: a feed's enclosure URL is input from the internet."""

    max_bytes: int = Field(
        200 * 1024 * 1024, ge=1, description="A download larger than this is refused (bytes)."
    )
    timeout_s: float = Field(120.0, gt=0, le=3600, description="A download slower than this is abandoned.")
    allow_private_hosts: bool = Field(
        False,
        description="Fetch from loopback, link-local and private addresses (tests' local servers); off, "
        "an enclosure URL cannot make podrec read the local network.",
    )


class IngestSettings(Section):
    """What a record off a topic (or a row of an imported log) may be before it is parsed: input from
    anyone who can write there, so bounded before the parser sees it (podrec/ingest/events.py)."""

    max_record_bytes: int = Field(
        65_536, ge=1_024, le=16 * 1024 * 1024,
        description="A record larger than this is rejected unread (an impression of 500 items is ~45 KB).",
    )  # fmt: skip
    max_nesting: int = Field(
        16, ge=2, le=500,
        description="A record whose arrays and objects nest deeper than this is rejected unparsed.",
    )  # fmt: skip

    @property
    def limits(self) -> RecordLimits:
        return RecordLimits(max_bytes=self.max_record_bytes, max_depth=self.max_nesting)


class ImpressionsSettings(Section):
    """What makes an impression trustworthy (podrec/ingest/impressions.py): the API signs each served list,
    and ingestion accepts only signed lists served in the listener's arm with propensities above a floor."""

    signing_key: SecretStr | None = Field(
        None,
        description=(
            "HMAC-SHA256 key the API signs impressions with and ingestion checks them against; a secret "
            "(environment or PODREC_SECRETS_DIR only), at least 32 characters. Unset: one is minted once "
            "into <PODREC_DATA_DIR>/secrets/PODREC_IMPRESSIONS_SIGNING_KEY, which every process sharing "
            "that data folder reads (the cluster profile mints it with its other credentials)."
        ),
    )
    min_propensity: float = Field(
        0.001,
        gt=0,
        le=1,
        description=(
            "An impression with an item logged below this propensity is rejected, so no inverse-propensity "
            "weight exceeds 1/min_propensity. An explored item has share · slots / (new episodes in the "
            "pool): keep the floor under it (at 0.001 and share 0.2, pools of up to 200 new episodes)."
        ),
    )

    @model_validator(mode="after")
    def _key_long_enough(self) -> Self:
        # Checked here rather than with min_length so that the refusal never echoes the value.
        if self.signing_key is not None and len(self.signing_key.get_secret_value()) < 32:
            raise ValueError("PODREC_IMPRESSIONS_SIGNING_KEY must be at least 32 characters")
        return self


class RetentionSettings(Section):
    event_days: int = Field(
        400,
        ge=1,
        le=36_500,
        description="Events and impressions older than this many days are deleted by monitoring/retention.",
    )
    derived_days: int = Field(
        90,
        ge=1,
        le=36_500,
        description=(
            "Lists, ALS factors and saved models older than this many days are deleted by "
            "monitoring/retention (they are rebuilt from the events; the serving store keeps its own)."
        ),
    )


class MaintenanceSettings(Section):
    """The weekly table upkeep (monitoring/lake_maintenance; podrec/lake/maintenance.py)."""

    compact_days: int = Field(
        8, ge=1, le=366,
        description="Days of partitions compacted per run (the week since the last run, and one more).",
    )  # fmt: skip
    retain_hours: int = Field(
        168, ge=168,
        description=(
            "VACUUM deletes files a table stopped using this many hours ago: time travel reaches this far "
            "back, and rows deleted by retention or a forget request are gone from storage after it. "
            "Delta refuses less than 168 (a reader of an older snapshot could lose its files)."
        ),
    )  # fmt: skip


class DataSettings(Section):
    dir: str = Field("./data", description="Where local services keep their state.")

    @property
    def path(self) -> Path:
        return Path(self.dir).expanduser().resolve()

    @property
    def audio_path(self) -> Path:
        """Downloaded (or locally synthesised) episode audio, one file per episode id."""
        return self.path / "audio"


class CacheSettings(Section):
    dir: str = Field(
        str(Path.home() / ".cache" / "podrec"), description="Jars and binaries fetched by infra/setup.sh."
    )

    @property
    def path(self) -> Path:
        return Path(self.dir).expanduser().resolve()


class PartitionsSettings(Section):
    start: date = Field(date(2026, 11, 1), description="First daily partition.")


class EngagementSettings(Section):
    """score = listen·max_completion + complete·[completed] + like·[liked] + replay·min(plays - 1, 3)
    + time·min(listen_seconds, time_cap_s) / time_cap_s; an early skip scores
    ``early_skip_weight · (1 - listen_seconds / early_skip_max_s)`` instead (podrec/recsys/engagement.py)."""

    listen_weight: float = Field(1.0, ge=0, description="Per unit of the furthest point reached.")
    complete_weight: float = Field(1.0, ge=0, description="Bonus for reaching 95% or a complete.")
    like_weight: float = Field(2.0, ge=0, description="Bonus for a like that was not taken back.")
    replay_weight: float = Field(0.25, ge=0, description="Per extra play that day (up to 3).")
    early_skip_weight: float = Field(
        -1.0, le=0, description="Score of a skip before early_skip_fraction: a confident negative."
    )
    early_skip_fraction: float = Field(
        0.05, ge=0, lt=1, description="A skip before this share of the episode is early."
    )
    time_weight: float = Field(
        1.0, ge=0, description="Per time_cap_s of listening (capped there): minutes count, not only shares."
    )
    time_cap_s: float = Field(3600.0, gt=0, description="Listening time at which time_weight is reached.")
    early_skip_max_s: float = Field(
        600.0,
        gt=0,
        description=(
            "An early skip's negative fades with the time heard: full at 0 s, none from here on (5% of a "
            "2-hour episode is 6 minutes of listening, not a rejection)."
        ),
    )
    bot_max_events_per_day: int = Field(
        3000, ge=1, description="silver.user_events drops a user's day above this many events as a bot."
    )


class BurstSettings(Section):
    """Coordinated plays held out of the model window (silver.flagged_listeners, podrec/recsys/bursts.py):
    new listeners crowding the same episodes, or one listener far busier than the rest."""

    new_days: int = Field(
        3,
        ge=1,
        description=(
            "A listener first seen in the model window within its last this-many days is new; those days "
            "are the recent days a burst is judged on (below the window's length, or no one is old)."
        ),
    )
    min_new_listeners: int = Field(
        50,
        ge=1,
        description="An episode is a burst only with at least this many new listeners in those days.",
    )
    reach_ratio: float = Field(
        10.0,
        gt=1,
        description=(
            "... and only if the share of new listeners who played it is at least this many times the share "
            "of old listeners who did (counting one old listener more, so none stays comparable)."
        ),
    )
    rate_mads: float = Field(
        10.0,
        gt=0,
        description=(
            "A listener whose interactions per active day in the window exceed exp(median + this·MAD) of the "
            "listeners' log rates is flagged ..."
        ),
    )
    rate_min_per_day: float = Field(
        50.0, gt=0, description="... and only above this many a day, whatever the spread (MAD 0)."
    )


class AlsSettings(Section):
    """docs/design.md: ``ALS(implicitPrefs=True, alpha=40, regParam=0.08)`` on a trailing window."""

    alpha: float = Field(40.0, gt=0, description="Confidence scale: c = 1 + alpha·|engagement|.")
    reg_param: float = Field(0.08, ge=0, description="L2 regularisation.")
    rank: int = Field(32, ge=1, le=1024, description="Latent factors.")
    max_iter: int = Field(10, ge=1, description="Alternations.")
    blocks: int = Field(4, ge=1, description="User and item blocks (parallelism of a fit).")
    window_days: int = Field(
        28, ge=1, description="Trailing days of daily engagement a fit (and its lists) use."
    )
    seed: int = Field(42, description="Seed of the factor initialisation: same data, same model.")
    pool_variants: bool = Field(
        True,
        description=(
            "Fit on canonical episodes (engagement summed over language variants); every variant, a new "
            "translation included, is scored with its canonical episode's factors."
        ),
    )


class HybridSettings(Section):
    """The list rules of gold.recommendations (docs/design.md, Hybrid and Cold start)."""

    als_weight: float = Field(0.7, ge=0, le=1, description="w_als; content gets 1 - w_als.")
    cold_start: Literal["auto", "factor", "literal", "reserved", "fixed"] = Field(
        "auto",
        description=(
            "factor | literal | reserved | fixed (docs/design.md, Cold start), or auto: the newest "
            "evaluation's pick (best new-episode recall within 2% NDCG of als_only), factor until one exists."
        ),
    )
    full_weight_listeners: int = Field(
        20, ge=1, description="Listeners an episode needs before it is scored on its own factors alone."
    )
    prior_neighbors: int = Field(20, ge=1, description="Content neighbours a new episode's prior uses.")
    k: int = Field(10, ge=1, le=500, description="Length of each list.")
    candidates: int = Field(200, ge=1, description="Top ALS candidates joined to content ones.")
    per_show_cap: int = Field(3, ge=1, description="At most this many episodes of one show in a list.")
    fallback_language: str = Field(
        "en", min_length=2, description="Variant language when none is in the user's."
    )
    reserved_slots: int = Field(
        2, ge=0, description="New-episode slots of the `reserved` cold-start strategy."
    )
    follow_weight: float = Field(
        0.2,
        ge=0,
        le=1,
        description=(
            "Weight f of the followed-show source: score = (1 - f)·(w_als·ALS + w_content·content) + "
            "f·[next unplayed episode of a show the listener follows]; 0 turns the source off."
        ),
    )
    follow_min_episodes: int = Field(
        3, ge=1, description="A listener follows a show after engaging with this many of its episodes."
    )
    rerank_weight: float = Field(
        0.1,
        ge=0,
        le=1,
        description=(
            "MMR re-ranking: each next pick maximises (1 - r)·score - r·(its highest content similarity to "
            "the picks above it); 0 keeps the blend's order."
        ),
    )
    fresh_weight: float = Field(
        0.0,
        ge=0,
        le=1,
        description=(
            "Weight g of new episodes close to what the listener likes (hybrid only): score = "
            "(1 - f - g)·blend + f·follow + g·[published within fresh_days]·content; 0 turns it off."
        ),
    )
    fresh_days: int = Field(
        7, ge=1, description="An episode counts as fresh this many days after its publication."
    )

    @model_validator(mode="after")
    def _weights_share_one_score(self) -> Self:
        """The follow and fresh sources take their weights from the blend's: together at most all of it."""
        if self.follow_weight + self.fresh_weight > 1:
            raise ValueError(
                f"PODREC_HYBRID_FOLLOW_WEIGHT + PODREC_HYBRID_FRESH_WEIGHT is "
                f"{self.follow_weight + self.fresh_weight:g}; they share one score, so at most 1"
            )
        return self


class EvaluationSettings(Section):
    """What the weekly offline evaluation reads: bounded, so its cost follows the window, not the history."""

    window_days: int = Field(
        56, ge=0, description="Days of engagement up to the date it evaluates on (0: all of them)."
    )
    max_users: int = Field(
        10_000, ge=100, description="Listeners it evaluates: a stable hash sample above this many."
    )


class TuningSettings(Section):
    """The weekly self-tuning (gold.tuning, podrec/recsys/tuning.py): its grid and its acceptance rule."""

    pin: bool = Field(
        False, description="true: fit and list with the als and hybrid settings as written, never tuned ones."
    )
    margin: float = Field(
        0.02,
        ge=0,
        description="A challenger is accepted only if its NDCG@K beats the serving setting's by this share.",
    )
    protocol: Literal["time", "stratified", "published"] = Field(
        "time", description="Split the sweep is measured on (the held-out days of the time split by default)."
    )
    k: int = Field(10, ge=1, le=500, description="K of the NDCG the acceptance rule compares.")
    # Below 1 too: on sparse rating-like logs a low confidence scale wins (MovieLens 100K: 0.5).
    alphas: list[float] = Field([0.5, 1.0, 10.0, 40.0], min_length=1, description="ALS alpha values swept.")
    reg_params: list[float] = Field(
        [0.01, 0.08, 0.2, 0.3], min_length=1, description="ALS regParam values swept."
    )
    ranks: list[int] = Field([16, 32, 64], min_length=1, description="ALS rank values swept.")
    als_weights: list[float] = Field(
        [0.5, 0.7, 0.9], min_length=1, description="Hybrid w_als values swept on the best fit."
    )
    rerank_weights: list[float] = Field(
        [0.0, 0.1, 0.2, 0.3], min_length=1, description="Re-ranking weights tried on the best fit."
    )


class AbSettings(Section):
    experiment_id: str = Field("hybrid-vs-als-1", min_length=1, description="Salt of the sticky bucket hash.")
    hybrid_buckets: int = Field(50, ge=0, le=100, description="Buckets 0..N-1 get hybrid, the rest als_only.")
    new_episode_days: int = Field(
        7, ge=1, description="An episode is new this many days after it first appears in the catalog."
    )
    cuped_days: int = Field(
        7, ge=0, description="Days before the experiment whose engagement is each listener's CUPED covariate."
    )
    srm_p_value: float = Field(
        0.001, gt=0, lt=1, description="The sample-ratio check warns below this chi-square p-value."
    )


class ExplorationSettings(Section):
    """New-episode slots served at random and logged with their propensities (off by default)."""

    share: float = Field(
        0.0,
        ge=0,
        le=1,
        description=(
            "Share of served lists, drawn per request, whose last `slots` places go to new episodes drawn "
            "uniformly from the listener's language; 0: exploration off, no propensities logged."
        ),
    )
    slots: int = Field(1, ge=1, le=10, description="New-episode places of an exploring list.")


class ChecksSettings(Section):
    freshness_hours: float = Field(
        6.0, gt=0, description="A day's events are fresh if the newest is within this many hours of its end."
    )
    stale_after_hours: float = Field(
        26.0,
        gt=0,
        description=(
            "The serving version, the lists and the daily tables they read show as stale in Dagster when "
            "not materialized within this many hours (a day that did not run)."
        ),
    )
    max_rows: int = Field(
        200_000,
        ge=1_000,
        description=(
            "Rows a table check validates in one process: above it, every rule-breaking row (found by "
            "Spark) plus a sample of whole listeners/episodes of about this size."
        ),
    )


class AutomationSettings(Section):
    running: bool = Field(
        False,
        description=(
            "The automation sensor starts switched on, so the daemon runs the graph by its conditions "
            "(podrec_assets/automation.py), and so does the Kafka-lag sensor: `make dev` and the cluster "
            "profile. Off, both wait for a person to turn them on in the UI."
        ),
    )


class DriftSettings(Section):
    reference_days: int = Field(7, ge=1, description="Days before the checked one that form its reference.")
    sample_rows: int = Field(
        50_000, ge=100, description="Rows of each day a drift report compares (a seeded sample above it)."
    )
    share: float = Field(0.5, gt=0, le=1, description="A drift check warns at this share of drifted columns.")


class PublishSettings(Section):
    retention: int = Field(
        3, ge=0, description="Passed versions kept besides the active one and its predecessor."
    )
    min_share_of_previous: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Gate: a version must list at least this share of the active one's users.",
    )
    batch_size: int = Field(
        2_000, ge=1, le=100_000, description="Documents per unordered insert batch when a version is staged."
    )
    parallel_batches: int = Field(
        2,
        ge=1,
        le=16,
        description="Batches written at once while staging; the store converts documents on each connection.",
    )
    chunk_rows: int = Field(
        200_000, ge=1_000, description="List rows the publish holds on the driver at once (whole listeners)."
    )


class ApiSettings(Section):
    mongo_timeout_ms: int = Field(
        1000, ge=1, description="How long a request waits for MongoDB before a 503."
    )
    version_cache_s: float = Field(
        1.0,
        ge=0,
        description="How long the API trusts the active version it read; a switch shows within this.",
    )
    cache_mb: int = Field(
        256,
        ge=0,
        le=65_536,
        description=(
            "Memory per API worker for documents already read from the serving version (their BSON bytes, "
            "least recently used out); dropped when the active version changes. 0: always read MongoDB."
        ),
    )
    impressions_buffer: int = Field(
        10_000,
        ge=1,
        description=(
            "Impressions a worker holds for Kafka; beyond it (a slow or absent broker) new ones are dropped "
            "and counted at /metrics, never slowing a request."
        ),
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description=(
            "uvicorn worker processes of `podrec serve`; each keeps its own cache, so each reads every list "
            "once from MongoDB after a switch. One answers ~2,000-4,000 cached req/s on one core."
        ),
    )
    miss_cache_mb: int = Field(
        16,
        ge=0,
        le=4_096,
        description=(
            "Memory per API worker for ids found missing from the serving version (~256 bytes each), kept "
            "apart from cache_mb so that requests for random ids cannot evict real lists. 0: not kept."
        ),
    )
    auth: Literal["hs256", "jwks", "off"] = Field(
        "hs256",
        description=(
            "How callers prove who they are (api/auth.py): hs256, bearer JWTs signed with auth_key; jwks, "
            "RS256 JWTs checked against the keys an identity provider publishes at auth_jwks_url; off, "
            "nobody is asked (a benchmark, a private network): any list is served, without reasons."
        ),
    )
    auth_key: SecretStr | None = Field(
        None,
        description=(
            "HMAC key of hs256 tokens, at least 32 characters; a secret (environment or PODREC_SECRETS_DIR "
            "only). Unset: one is minted once into <PODREC_DATA_DIR>/secrets/PODREC_API_AUTH_KEY, which "
            "`podrec serve` and `podrec token` on the same data folder share."
        ),
    )
    auth_jwks_url: str | None = Field(
        None, description="jwks: the identity provider's JSON Web Key Set (https://…/.well-known/jwks.json)."
    )
    auth_issuer: str | None = Field(None, description="When set, a token's `iss` must be this.")
    auth_audience: str | None = Field(None, description="When set, a token's `aud` must hold this.")
    rate_listener_per_s: float = Field(
        10.0,
        ge=0,
        description="Requests per second a listener token's subject may make to one worker; 0: no limit.",
    )
    rate_service_per_s: float = Field(
        10_000.0,
        ge=0,
        description=(
            "Requests per second a service token's subject may make to one worker (a backend asks for many "
            "listeners, so it is exempt from the per-address limit); 0: no limit."
        ),
    )
    rate_address_per_s: float = Field(
        50.0,
        ge=0,
        description=(
            "Requests per second one client address may make to one worker with no token or a listener's "
            "(behind a proxy, the address uvicorn's --forwarded-allow-ips trusts); 0: no limit."
        ),
    )
    rate_burst_s: float = Field(
        2.0, gt=0, le=3_600, description="A quiet caller may burst this many seconds' worth of its rate."
    )
    max_url_bytes: int = Field(2_048, ge=256, description="A longer path and query is refused (414).")
    max_header_bytes: int = Field(
        8_192, ge=1_024, description="Larger request headers, names and values together, are refused (431)."
    )
    max_body_bytes: int = Field(
        1_024, ge=0, description="A larger request body (or one of unannounced length) is refused (413)."
    )
    access_log: bool = Field(
        True,
        description=(
            "One JSON line per request on stdout: time, request id, route template, status, latency, a hash "
            "of the token's subject — never a raw listener id or a reason."
        ),
    )
    metrics: bool = Field(
        True, description="Prometheus metrics at /metrics, summed over every worker of `podrec serve`."
    )

    @model_validator(mode="after")
    def _auth_complete(self) -> Self:
        """jwks without its URL cannot verify anything, and a URL with another mode would be ignored
        silently: both refused here. The key's length is checked here so a refusal never echoes it."""
        if self.auth == "jwks" and not self.auth_jwks_url:
            raise ValueError("PODREC_API_AUTH=jwks needs PODREC_API_AUTH_JWKS_URL")
        if self.auth != "jwks" and self.auth_jwks_url:
            raise ValueError(f"PODREC_API_AUTH_JWKS_URL set, but PODREC_API_AUTH={self.auth}: set it to jwks")
        if self.auth_key is not None and len(self.auth_key.get_secret_value()) < 32:
            raise ValueError("PODREC_API_AUTH_KEY must be at least 32 characters")
        return self


# Secrets, as (section, field): never read from the settings file, never shown.
SECRETS = (
    ("mongo", "uri"),
    ("podcastindex", "api_key"),
    ("podcastindex", "api_secret"),
    ("kafka", "sasl_password"),
    ("kafka", "producer_sasl_password"),
    ("kafka", "api_sasl_password"),
    ("kafka", "ingest_sasl_password"),
    ("spark", "auth_secret"),
    ("lake", "commit_lock"),
    ("impressions", "signing_key"),
    ("api", "auth_key"),
)
# Variables renamed by the settings tree: refused with the new name rather than silently ignored.
RENAMED = {
    "PODREC_EARLY_SKIP_FRACTION": "PODREC_ENGAGEMENT_EARLY_SKIP_FRACTION",
    "PODREC_BOT_MAX_EVENTS_PER_DAY": "PODREC_ENGAGEMENT_BOT_MAX_EVENTS_PER_DAY",
    "PODREC_COLD_START_STRATEGY": "PODREC_HYBRID_COLD_START",
    "PODREC_COLD_START_FULL_WEIGHT_LISTENERS": "PODREC_HYBRID_FULL_WEIGHT_LISTENERS",
    "PODREC_COLD_START_PRIOR_NEIGHBORS": "PODREC_HYBRID_PRIOR_NEIGHBORS",
    "PODREC_RECOMMENDATIONS_K": "PODREC_HYBRID_K",
    "PODREC_RECOMMENDATIONS_CANDIDATES": "PODREC_HYBRID_CANDIDATES",
    "PODREC_PER_SHOW_CAP": "PODREC_HYBRID_PER_SHOW_CAP",
    "PODREC_FALLBACK_LANGUAGE": "PODREC_HYBRID_FALLBACK_LANGUAGE",
    "PODREC_EXPERIMENT_ID": "PODREC_AB_EXPERIMENT_ID",
    "PODREC_CHECK_FRESHNESS_HOURS": "PODREC_CHECKS_FRESHNESS_HOURS",
}


class SettingsError(ValueError):
    """A setting is missing, out of range or in the wrong place; the message names the variable."""


def config_file() -> Path:
    return Path(os.environ.get("PODREC_CONFIG_FILE", "podrec.toml"))


def secret_variable(section: str, name: str) -> str:
    return f"{PREFIX}{section.upper()}_{name.upper()}"


def secrets_dir_values() -> dict[str, Any]:
    """Secrets from files in ``PODREC_SECRETS_DIR``, each named like its variable
    (``PODREC_MONGO_URI``): what an operator mounts instead of exporting them. Only secrets."""
    folder = Path(os.environ["PODREC_SECRETS_DIR"]).expanduser()
    if not folder.is_dir():
        raise SettingsError(f"PODREC_SECRETS_DIR: {folder} is not a directory")
    values: dict[str, Any] = {}
    for section, name in SECRETS:
        path = folder / secret_variable(section, name)
        if path.is_file():
            values.setdefault(section, {})[name] = path.read_text().strip()
    return values


# The defaults each profile changes. `cluster` is every part as a distributed engine on this machine
# (`podrec infra up --profile cluster`), on ports and a data folder of its own, so both stacks can run
# side by side; pointing the same settings at real clusters is what a deployment changes.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "local": {},
    "cluster": {
        "data": {"dir": "./data/cluster"},
        "lake": {"uri": "s3a://podrec/lakehouse", "s3_endpoint": "http://127.0.0.1:18333"},
        "spark": {"master": "spark://127.0.0.1:7077"},
        "kafka": {
            "bootstrap": "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094",
            "controller_port": 19095,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-512",
            # The brokers' own user and super user; every podrec client logs in as its role's user.
            "sasl_username": "podrec",
            "producer_sasl_username": "podrec-producer",
            "api_sasl_username": "podrec-api",
            "ingest_sasl_username": "podrec-ingest",
        },
        "mongo": {"local_backend": "postgresql"},
        "automation": {"running": True},
    },
}


def minted_cluster_secrets(folder: Path) -> dict[str, Any]:
    """The local cluster profile's credentials: minted once into ``folder`` (owner-only files, like a
    mounted secrets directory) and read from there after, so the profile needs no password typed in
    and none lives in the repo. Only for the stack podrec starts itself; a real cluster's secrets
    come from the environment or PODREC_SECRETS_DIR, which skip this."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    values = {
        # The object store's key pair: not podrec settings but the standard AWS_* variables, which
        # `cluster_environment` hands to every process (Spark's s3a and delta-rs read them there).
        "AWS_ACCESS_KEY_ID": lambda: "podrec",
        "AWS_SECRET_ACCESS_KEY": lambda: secrets.token_urlsafe(24),
        "PODREC_KAFKA_SASL_PASSWORD": lambda: secrets.token_urlsafe(24),
        **{
            secret_variable("kafka", f"{role}_sasl_password"): lambda: secrets.token_urlsafe(24)
            for role in KAFKA_ROLES
        },
        "PODREC_SPARK_AUTH_SECRET": lambda: secrets.token_urlsafe(32),
        # PLAIN: FerretDB hands the user and password to PostgreSQL, which checks them (SCRAM there).
        "PODREC_MONGO_URI": lambda: (
            f"mongodb://podrec:{secrets.token_urlsafe(24)}@127.0.0.1:27018/?authMechanism=PLAIN"
        ),
        "PODREC_IMPRESSIONS_SIGNING_KEY": lambda: secrets.token_urlsafe(32),
    }
    minted = {name: mint_secret(folder / name, mint) for name, mint in values.items()}
    kafka = ["sasl_password", *(f"{role}_sasl_password" for role in KAFKA_ROLES)]
    return {
        "kafka": {name: minted[secret_variable("kafka", name)] for name in kafka},
        "spark": {"auth_secret": minted["PODREC_SPARK_AUTH_SECRET"]},
        "mongo": {"uri": minted["PODREC_MONGO_URI"]},
        "impressions": {"signing_key": minted["PODREC_IMPRESSIONS_SIGNING_KEY"]},
    }


def cluster_commit_lock(mongo_uri: str | SecretStr, postgres_port: int | str) -> str:
    """The cluster profile's commit lock: the PostgreSQL ``infra up`` starts behind FerretDB, logged in as
    the serving store's user (the only login it has), so the profile mints no extra credential. The
    login is the one in force (an operator's PODREC_MONGO_URI, else the minted one), as is the port."""
    uri = mongo_uri.get_secret_value() if isinstance(mongo_uri, SecretStr) else mongo_uri
    login = urlsplit(uri)  # user and password stay percent-encoded: libpq decodes them in a URI
    host = login.hostname or "127.0.0.1"
    return f"postgresql://{login.username}:{login.password}@{host}:{int(postgres_port)}/postgres"


def mint_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret in ``path`` (an owner-only file), made by ``make`` the first time. It is written to a
    draft beside it and linked into place, so processes starting at once (API workers, a Dagster run)
    never read a half-written file and all keep the one that got there first."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        handle, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # owner-only
        try:
            with os.fdopen(handle, "w") as file:
                file.write(make())
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        finally:
            os.unlink(draft)
    return path.read_text().strip()


def impressions_signing_key(settings: PodrecSettings) -> bytes:
    """The HMAC key impressions are signed and checked with (the UTF-8 bytes of
    ``PODREC_IMPRESSIONS_SIGNING_KEY``, or else of the one minted once into ``<data dir>/secrets``, where
    the cluster profile mints its credentials), so the API and the ingestion of one machine agree with
    nothing typed. Called when a signer or a checker is built, never at import; processes that share
    no data folder need the setting itself. Hand it to HMAC and nowhere else."""
    key = settings.impressions.signing_key
    if key is None:
        path = settings.data.path / "secrets" / secret_variable("impressions", "signing_key")
        key = SecretStr(mint_secret(path, lambda: secrets.token_urlsafe(32)))
    return key.get_secret_value().encode()


class _SecretFreeToml(TomlConfigSettingsSource):
    """The settings file, refusing any secret it holds: secrets belong in the environment."""

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        found = [(s, f) for s, f in SECRETS if f in (values.get(s) or {})]
        if found:
            raise SettingsError(
                f"{config_file()} holds secret(s) {', '.join(f'[{s}] {f}' for s, f in found)}: remove them "
                f"and set {', '.join(secret_variable(s, f) for s, f in found)} in the environment (or a file "
                "of that name in PODREC_SECRETS_DIR) instead"
            )
        return values


class PodrecSettings(BaseSettings):
    """Deployment settings and knobs. Defaults run everything on one machine."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,  # PODREC_ALS_WINDOW_DAYS → als.window_days
        extra="ignore",
        frozen=True,
    )

    profile: Literal["local", "cluster"] = Field(
        "local",
        description=(
            "Which defaults apply: local (one process, no passwords) or cluster (a Spark standalone "
            "master, three SASL Kafka nodes, FerretDB on PostgreSQL with a password; see PROFILES)."
        ),
    )
    catalog: Literal["auto", "sample", "podcastindex", "synthetic"] = Field(
        "auto",
        description=(
            "Where episodes come from: podcastindex (needs the key and secret), the bundled sample, a "
            "synthetic catalog of any size, or auto: PodcastIndex when its key is set, else the sample."
        ),
    )
    lake: LakeSettings = LakeSettings()
    spark: SparkSettings = SparkSettings()
    kafka: KafkaSettings = KafkaSettings()
    mongo: MongoSettings = MongoSettings()
    postgres: PostgresSettings = PostgresSettings()
    object_store: ObjectStoreSettings = ObjectStoreSettings()
    podcastindex: PodcastIndexSettings = PodcastIndexSettings()
    synthetic: SyntheticSettings = SyntheticSettings()
    vosk: VoskSettings = VoskSettings()
    audio: AudioSettings = AudioSettings()
    ingest: IngestSettings = IngestSettings()
    impressions: ImpressionsSettings = ImpressionsSettings()
    retention: RetentionSettings = RetentionSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    data: DataSettings = DataSettings()
    cache: CacheSettings = CacheSettings()
    partitions: PartitionsSettings = PartitionsSettings()
    engagement: EngagementSettings = EngagementSettings()
    bursts: BurstSettings = BurstSettings()
    als: AlsSettings = AlsSettings()
    hybrid: HybridSettings = HybridSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    tuning: TuningSettings = TuningSettings()
    ab: AbSettings = AbSettings()
    exploration: ExplorationSettings = ExplorationSettings()
    checks: ChecksSettings = ChecksSettings()
    automation: AutomationSettings = AutomationSettings()
    drift: DriftSettings = DriftSettings()
    publish: PublishSettings = PublishSettings()
    api: ApiSettings = ApiSettings()

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
        if os.environ.get("PODREC_SECRETS_DIR"):
            sources.append(InitSettingsSource(settings_cls, init_kwargs=secrets_dir_values()))
        if config_file().is_file():
            sources.append(_SecretFreeToml(settings_cls, toml_file=config_file()))
        # A profile only changes defaults: the environment, the secrets and the file all win over it.
        profile = init_settings.init_kwargs.get("profile") or os.environ.get(f"{PREFIX}PROFILE", "local")
        if profile in PROFILES:  # an unknown name is reported by the `profile` field itself
            if profile == "cluster" and not os.environ.get("PODREC_SECRETS_DIR"):
                data_dir = (
                    (init_settings.init_kwargs.get("data") or {}).get("dir")
                    or os.environ.get(f"{PREFIX}DATA_DIR")
                    or PROFILES["cluster"]["data"]["dir"]
                )
                minted = minted_cluster_secrets(Path(data_dir).expanduser() / "secrets")
                given = init_settings.init_kwargs
                minted["lake"] = {
                    "commit_lock": cluster_commit_lock(
                        (given.get("mongo") or {}).get("uri") or os.environ.get(f"{PREFIX}MONGO_URI")
                        or minted["mongo"]["uri"],
                        (given.get("postgres") or {}).get("port") or os.environ.get(f"{PREFIX}POSTGRES_PORT")
                        or PostgresSettings().port,
                    )
                }  # fmt: skip
                sources.append(InitSettingsSource(settings_cls, init_kwargs=minted))
            sources.append(InitSettingsSource(settings_cls, init_kwargs=PROFILES[profile]))
        return tuple(sources)

    def with_(self, **sections: dict[str, Any] | str) -> PodrecSettings:
        """A copy with some knobs changed and validated, e.g. ``settings.with_(als={"rank": 16})``."""
        data = self.model_dump()
        for name, update in sections.items():
            data[name] = {**data[name], **update} if isinstance(update, dict) else update
        return type(self).model_validate(data)

    def public_view(self) -> dict[str, Any]:
        """Settings safe to print or attach as metadata: secrets masked, the Mongo URI without credentials."""
        view = self.model_dump(mode="json")  # SecretStr dumps as "**********"
        view["mongo"]["uri"] = redact_uri(self.mongo.uri.get_secret_value())
        if self.lake.commit_lock is not None:
            view["lake"]["commit_lock"] = redact_uri(self.lake.commit_lock.get_secret_value())
        return view


def redact_uri(uri: str) -> str:
    """``mongodb://user:pw@host/`` → ``mongodb://***@host/``: where, without who."""
    scheme, sep, rest = uri.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return uri
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


# URI options that can carry a credential (tlsCertificateKeyFilePassword, authMechanismProperties=…TOKEN:…).
_SENSITIVE = ("password", "secret", "token", "authmechanismproperties")


def without_credentials(uri: str) -> str:
    """``mongodb://user:pw@host/?tlsCertificateKeyFilePassword=x`` → ``mongodb://host/``: the address
    and the options that carry no credential, safe to hold in config."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    if "@" in rest.split("/", 1)[0]:
        rest = rest.split("@", 1)[1]
    address, mark, query = rest.partition("?")
    options = [o for o in query.split("&") if o and not any(w in o.split("=")[0].lower() for w in _SENSITIVE)]
    return f"{scheme}://{address}" + (mark + "&".join(options) if options else "")


def env_name(location: tuple[int | str, ...]) -> str:
    """The environment variable of a field: ``("als", "alpha")`` → ``PODREC_ALS_ALPHA``."""
    return PREFIX + "_".join(str(part).upper() for part in location[:2])


def load_settings(**overrides: Any) -> PodrecSettings:
    """Read settings from the environment (and the optional file), with explicit overrides.

    Errors name the variable to fix: ``PODREC_ALS_ALPHA: Input should be greater than 0``.
    """
    renamed = [f"{old} is now {new}" for old, new in RENAMED.items() if old in os.environ and old != new]
    if renamed:
        raise SettingsError("renamed setting(s): " + "; ".join(renamed))
    try:
        return PodrecSettings(**overrides)
    except ValidationError as exc:
        raise SettingsError("invalid setting(s): " + "; ".join(map(_problem, exc.errors()))) from None


def _problem(error: Any) -> str:
    """One validation error as a line naming its variable; a section's own rule (several fields at
    once) already names them in its message."""
    if len(error["loc"]) < 2 and error["type"] == "value_error":
        return error["msg"].removeprefix("Value error, ")
    return f"{env_name(error['loc'])}: {error['msg']}"
