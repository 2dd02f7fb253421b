"""What every bronze, silver and gold table must satisfy, as Great Expectations suites.

Each table has a ``TableSuite``: the checks it carries (name, why, whether it blocks the run) and a
``build`` function that turns the table's rows (one day for a dated table) plus the ``Facts`` they
are compared with into the frame and expectations of each check. Plain pandas in, so the rules are
unit-tested without Spark or Dagster; ``checks/expectation_checks.py`` reads the rows and reports to Dagster.

Checks that guard the serving path are blocking: a failure stops everything downstream in the same
run, so a bad day never reaches the MongoDB publish.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from podrec.ingest.events import EVENT_TYPES
from podrec.lake import schemas
from podrec.quality.expectations import gxe

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

Suite = dict[str, tuple[pd.DataFrame, list["Expectation"]]]

# Spark simpleString types of the tables without one declared StructType.
_EVENT_TYPES = {f.name: f.dataType.simpleString() for f in schemas.VALIDATED_RECORD.fields}
BRONZE_USER_EVENTS = {c: _EVENT_TYPES[c] for c in schemas.BRONZE_USER_EVENTS_COLUMNS}
BRONZE_REJECTED = {
    "raw": "binary", "raw_text": "string", "error": "string", "kafka_partition": "int",
    "kafka_offset": "bigint", "received_at": "timestamp", "event_date": "date",
}  # fmt: skip
BRONZE_IMPRESSIONS = {
    f.name: f.dataType.simpleString()
    for f in schemas.VALIDATED_IMPRESSION.fields
    if f.name in schemas.BRONZE_IMPRESSIONS_COLUMNS
}
SILVER_EPISODES = {
    **{f.name: f.dataType.simpleString() for f in schemas.BRONZE_EPISODES.fields},
    "first_seen_date": "date",
    "canonical_episode_id": "string",
}


def declared(struct: schemas.StructType) -> dict[str, str]:
    return {f.name: f.dataType.simpleString() for f in struct.fields}


@dataclass(frozen=True)
class Facts:
    """What a table is compared with, read once per check run by ``checks/expectation_checks.py``."""

    day: date | None = None  # the one day checked; ``days`` when a range is checked at once
    days: tuple[date, ...] = ()
    day_column: str | None = None  # the table's day column (to split a range's rows by day)
    types: dict[str, str] = field(default_factory=dict)  # the table's actual Spark types
    catalog_ids: frozenset[str] = frozenset()  # silver/episodes' episode ids
    bronze_latest: date | None = None  # newest bronze/episodes snapshot
    active_users: frozenset[str] = frozenset()  # listeners in the day's model window
    k: int = 10
    freshness_hours: float = 6.0


@dataclass(frozen=True)
class CheckDef:
    name: str
    description: str
    blocking: bool = False


@dataclass(frozen=True)
class TableSuite:
    layer: str
    name: str
    partition_column: str | None  # the Delta table's day column; a check reads one day at a time
    checks: tuple[CheckDef, ...]
    build: Callable[[pd.DataFrame, Facts], Suite]
    needs: frozenset[str] = frozenset()  # facts to read: "catalog", "bronze_latest", "active_users"
    derive: dict[str, str] = field(default_factory=dict)  # Spark SQL columns computed before toPandas
    # Large tables are checked on every suspect row plus a sample of whole entities of this column.
    sample_by: str | None = None
    drop: tuple[str, ...] = ()  # columns never needed in pandas (blobs, vectors)
    # False for tables written by a stream (bronze events): the Dagster asset has no partitions, so
    # its checks read the newest day in the table, the one ingestion is filling.
    dagster_partitioned: bool = True

    @property
    def key(self) -> str:
        return f"{self.layer}/{self.name}"


# ---- building blocks -------------------------------------------------------------------------


def schema_check(facts: Facts, expected: dict[str, str]) -> tuple[pd.DataFrame, list[Expectation]]:
    """Every declared column present with its declared type (extra columns are allowed: Delta
    schema evolution only ever adds)."""
    # Each value names its column, so a failure's examples read "plays string" vs "plays bigint".
    frame = pd.DataFrame(
        {
            "type": [f"{c} {facts.types.get(c, '(missing)')}" for c in expected],
            "expected_type": [f"{c} {t}" for c, t in expected.items()],
        }
    )
    return frame, [gxe.ExpectColumnPairValuesToBeEqual(column_A="type", column_B="expected_type")]


def not_null(*columns: str) -> list[Expectation]:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns]


def unique(*columns: str) -> Expectation:
    if len(columns) == 1:
        return gxe.ExpectColumnValuesToBeUnique(column=columns[0])
    return gxe.ExpectCompoundColumnsToBeUnique(column_list=list(columns))


def in_catalog(column: str, facts: Facts) -> Expectation:
    return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=sorted(facts.catalog_ids))


def finite(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """A boolean column ``<column>_finite``: NaN and infinities are what break a ranking."""
    values = pd.to_numeric(frame[column], errors="coerce") if column in frame else pd.Series(dtype=float)
    return frame.assign(**{f"{column}_finite": np.isfinite(values.astype(float)).fillna(False)})


def finite_sql(column: str) -> str:
    """``finite`` as a Spark SQL expression, so Spark finds the rows it rejects."""
    return f"{column} IS NOT NULL AND NOT isnan({column}) AND abs({column}) != double('infinity')"


def has_rows() -> Expectation:
    return gxe.ExpectTableRowCountToBeBetween(min_value=1)


def day_is_complete(frame: pd.DataFrame, column: str, facts: Facts) -> tuple[pd.DataFrame, list[Expectation]]:
    """Freshness of dated partitions: each checked day has rows and its newest one is within the
    configured hours of the day's end (a stalled stream leaves a day that stops early). One row per
    day, so a range is checked in one validation."""
    days = facts.days or ((facts.day,) if facts.day else ())
    if not days:
        return frame, [has_rows()]
    times = pd.to_datetime(frame[column]) if column in frame else pd.Series(dtype="datetime64[ns]")
    if len(days) == 1 or facts.day_column is None:
        newest = {days[0]: times.max() if len(times) else pd.NaT}
    else:
        newest = times.groupby(pd.to_datetime(frame[facts.day_column]).dt.date).max().to_dict()
    ends = [datetime.combine(d + timedelta(days=1), time()) for d in days]
    per_day = pd.DataFrame(
        {
            "day": [d.isoformat() for d in days],
            "newest": [newest.get(d, pd.NaT) for d in days],
            "earliest_fresh": [e - timedelta(hours=facts.freshness_hours) for e in ends],
            "day_end": ends,
        }
    )
    return per_day, [
        gxe.ExpectColumnValuesToNotBeNull(column="newest"),  # the day has rows
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="newest",
            column_B="earliest_fresh",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="day_end", column_B="newest", or_equal=True, ignore_row_if="either_value_is_missing"
        ),
    ]


def rows_have(column: str, value: object) -> Expectation:
    return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=[value])


# ---- the tables ------------------------------------------------------------------------------


def _bronze_episodes(frame: pd.DataFrame, facts: Facts) -> Suite:
    return {
        "schema": schema_check(facts, declared(schemas.BRONZE_EPISODES)),
        "not_null": (frame, not_null("episode_id", "language", "source", "ingest_date")),
        "ranges": (
            frame,
            [
                gxe.ExpectColumnValuesToBeBetween(column="duration_s", min_value=0, max_value=86_400),
                gxe.ExpectColumnValuesToMatchRegex(column="language", regex=r"^[a-z]{2,3}$"),
            ],
        ),
        # A key of each day's snapshot: a range of days holds an episode once per day.
        "unique_keys": (frame, [unique("episode_id", "ingest_date")]),
        "has_rows": (frame, [has_rows()]),
    }


def _event_rules(frame: pd.DataFrame, facts: Facts, expected: dict[str, str], silver: bool) -> Suite:
    """Bronze keeps what ingestion accepted; silver must also be within episodes and complete days
    (bronze's newest day is still being filled, and the Kafka-lag sensor watches that stream)."""
    ranges: list[Expectation] = [
        gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=sorted(EVENT_TYPES)),
        gxe.ExpectColumnValuesToBeBetween(column="position_s", min_value=0),
    ]
    if silver:  # bronze keeps positions past the end; silver drops them
        ranges.append(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="episode_duration_s", column_B="position_s", or_equal=True,
                ignore_row_if="either_value_is_missing",
            )
        )  # fmt: skip
    suite: Suite = {
        "schema": schema_check(facts, expected),
        "not_null": (frame, not_null("event_id", "user_id", "episode_id", "event_type", "occurred_at")),
        "ranges": (frame, ranges),
        "unique_keys": (frame, [unique("event_id") if silver else unique("kafka_partition", "kafka_offset")]),
        **(
            {"freshness": day_is_complete(frame, "occurred_at", facts)}
            if silver
            else {"has_rows": (frame, [has_rows()])}
        ),
    }
    if silver:
        suite["references"] = (frame, [in_catalog("episode_id", facts)])
    return suite


def _bronze_user_events(frame: pd.DataFrame, facts: Facts) -> Suite:
    return _event_rules(frame, facts, BRONZE_USER_EVENTS, silver=False)


def _silver_user_events(frame: pd.DataFrame, facts: Facts) -> Suite:
    return _event_rules(frame, facts, BRONZE_USER_EVENTS, silver=True)


def _bronze_rejected(frame: pd.DataFrame, facts: Facts) -> Suite:
    return {
        "schema": schema_check(facts, BRONZE_REJECTED),
        "not_null": (frame, not_null("error", "received_at", "kafka_offset")),
    }


IMPRESSION_KEYS = (
    "impression_id",
    "user_id",
    "served_version",
    "experiment_id",
    "bucket",
    "policy",
    "served_at",
)


def _bronze_impressions(frame: pd.DataFrame, facts: Facts) -> Suite:
    return {
        "schema": schema_check(facts, BRONZE_IMPRESSIONS),
        "not_null": (frame, not_null(*IMPRESSION_KEYS)),
        "ranges": (
            frame,
            [
                gxe.ExpectColumnValuesToBeBetween(column="bucket", min_value=0, max_value=99),
                gxe.ExpectColumnValuesToBeBetween(column="items_count", min_value=1),
                rows_have("items_valid", True),
            ],
        ),
        "unique_keys": (frame, [unique("kafka_partition", "kafka_offset")]),
        "has_rows": (frame, [has_rows()]),
    }


def _silver_impressions(frame: pd.DataFrame, facts: Facts) -> Suite:
    return {
        "schema": schema_check(facts, declared(schemas.SILVER_IMPRESSIONS)),
        "not_null": (
            frame,
            not_null(*IMPRESSION_KEYS, "rank", "episode_id"),
        ),
        "ranges": (
            frame,
            [
                gxe.ExpectColumnValuesToBeBetween(column="rank", min_value=1),
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A="list_length",
                    column_B="rank",
                    or_equal=True,
                    ignore_row_if="either_value_is_missing",
                ),
                gxe.ExpectColumnValuesToBeBetween(column="bucket", min_value=0, max_value=99),
                gxe.ExpectColumnValuesToBeBetween(column="propensity", min_value=0, max_value=1),
            ],
        ),
        "unique_keys": (frame, [unique("impression_id", "rank")]),
        "references": (frame, [in_catalog("episode_id", facts)]),
    }


def _silver_episodes(frame: pd.DataFrame, facts: Facts) -> Suite:
    latest = pd.to_datetime(frame["ingest_date"]).max() if len(frame) else None
    fresh = pd.DataFrame({"catalog_latest": [latest], "bronze_latest": [pd.Timestamp(facts.bronze_latest)]})
    return {
        "schema": schema_check(facts, SILVER_EPISODES),
        "not_null": (frame, not_null("episode_id", "canonical_episode_id", "language", "first_seen_date")),
        "ranges": (frame, [gxe.ExpectColumnValuesToBeBetween(column="duration_s", min_value=0)]),
        "unique_keys": (frame, [unique("episode_id")]),
        # The catalog is as new as the newest bronze snapshot (it is rebuilt after each landing).
        "freshness": (fresh, [gxe.ExpectColumnPairValuesToBeEqual(column_A="catalog_latest",
                                                                  column_B="bronze_latest")]),
    }  # fmt: skip


def _silver_transcripts(frame: pd.DataFrame, facts: Facts) -> Suite:
    return {
        "schema": schema_check(facts, declared(schemas.SILVER_TRANSCRIPTS)),
        "not_null": (frame, not_null("episode_id", "source")),
        "ranges": (frame, [gxe.ExpectColumnValuesToBeBetween(column="audio_seconds", min_value=0)]),
        "unique_keys": (frame, [unique("episode_id")]),
        "references": (frame, [in_catalog("episode_id", facts)]),
    }


def _silver_daily_engagement(frame: pd.DataFrame, facts: Facts) -> Suite:
    frame = finite(frame, "engagement")
    return {
        "schema": schema_check(facts, declared(schemas.SILVER_DAILY_ENGAGEMENT)),
        "not_null": (frame, not_null("user_id", "episode_id", "plays", "engagement", "confidence")),
        "ranges": (
            frame,
            [
                gxe.ExpectColumnValuesToBeBetween(column="max_completion", min_value=0, max_value=1),
                gxe.ExpectColumnValuesToBeBetween(column="plays", min_value=0),
                gxe.ExpectColumnValuesToBeBetween(column="listen_seconds", min_value=0),
                gxe.ExpectColumnValuesToBeBetween(column="confidence", min_value=0),
                rows_have("engagement_finite", True),
            ],
        ),
        "unique_keys": (frame, [unique("user_id", "episode_id", "event_date")]),
        "references": (frame, [in_catalog("episode_id", facts)]),
        "has_rows": (frame, [has_rows()]),
    }


def _vectors(frame: pd.DataFrame, dims: str, finite_col: str) -> list[Expectation]:
    """Every vector finite and of the one length the table uses."""
    common = int(frame[dims].mode().iloc[0]) if len(frame) else 0
    return [
        gxe.ExpectColumnValuesToBeInSet(column=dims, value_set=[common]),
        gxe.ExpectColumnValuesToBeInSet(column=finite_col, value_set=[True]),
        gxe.ExpectColumnValuesToBeBetween(column=dims, min_value=1),
    ]


def _gold_episode_embeddings(frame: pd.DataFrame, facts: Facts) -> Suite:
    return {
        "schema": schema_check(facts, declared(schemas.GOLD_EPISODE_EMBEDDINGS)),
        "not_null": (frame, not_null("episode_id", "model", "text_sha256")),
        "ranges": (frame, _vectors(frame, "vector_dims", "vector_finite")),
        "unique_keys": (frame, [unique("episode_id", "model")]),
        "references": (frame, [in_catalog("episode_id", facts)]),
    }


def _gold_episode_similarity(frame: pd.DataFrame, facts: Facts) -> Suite:
    frame = frame.assign(
        self_pair=frame["episode_id"] == frame["neighbor_episode_id"]
    )  # also derived in Spark
    return {
        "schema": schema_check(facts, declared(schemas.GOLD_EPISODE_SIMILARITY)),
        "not_null": (frame, not_null("episode_id", "neighbor_episode_id", "similarity", "rank")),
        "ranges": (
            frame,
            [
                gxe.ExpectColumnValuesToBeBetween(column="similarity", min_value=-1.0001, max_value=1.0001),
                gxe.ExpectColumnValuesToBeBetween(column="rank", min_value=1),
                rows_have("self_pair", False),
            ],
        ),
        "unique_keys": (frame, [unique("episode_id", "neighbor_episode_id")]),
        "references": (frame, [in_catalog("episode_id", facts), in_catalog("neighbor_episode_id", facts)]),
    }


def _gold_als_factors(frame: pd.DataFrame, facts: Facts) -> Suite:
    return {
        "schema": schema_check(facts, declared(schemas.GOLD_ALS_FACTORS)),
        "not_null": (frame, not_null("side", "id", "model_version")),
        "ranges": (
            frame,
            [
                gxe.ExpectColumnValuesToBeInSet(column="side", value_set=["user", "item"]),
                gxe.ExpectColumnValuesToBeBetween(column="interactions", min_value=1),
                *_vectors(frame, "factor_dims", "factors_finite"),
            ],
        ),
        "unique_keys": (frame, [unique("side", "id")]),
        "has_rows": (frame, [has_rows()]),
    }


def list_lengths(frame: pd.DataFrame, facts: Facts) -> pd.DataFrame:
    """One row per listener active in the model window, with how many rows their list has."""
    counts = frame.groupby("user_id").size()
    users = sorted(facts.active_users)
    return pd.DataFrame({"user_id": users, "items": [int(counts.get(u, 0)) for u in users]})


def _gold_recommendations(frame: pd.DataFrame, facts: Facts) -> Suite:
    frame = finite(frame, "score")
    lengths = list_lengths(frame, facts)
    return {
        "schema": schema_check(facts, declared(schemas.GOLD_RECOMMENDATIONS)),
        "not_null": (frame, not_null("user_id", "episode_id", "canonical_episode_id", "policy", "reason")),
        "scores_are_numbers": (frame, [*not_null("score"), rows_have("score_finite", True)]),
        "every_active_user_has_k": (
            lengths,
            [gxe.ExpectColumnValuesToBeBetween(column="items", min_value=facts.k, max_value=facts.k)],
        ),
        "one_variant_per_canonical": (frame, [unique("user_id", "canonical_episode_id")]),
        "ranges": (
            frame,
            [
                gxe.ExpectColumnValuesToBeBetween(column="rank", min_value=1, max_value=facts.k),
                gxe.ExpectColumnValuesToBeBetween(column="bucket", min_value=0, max_value=99),
            ],
        ),
        "unique_keys": (frame, [unique("user_id", "rank"), unique("user_id", "episode_id")]),
        "references": (frame, [in_catalog("episode_id", facts)]),
    }


def _gold_evaluation(frame: pd.DataFrame, facts: Facts) -> Suite:
    return {
        "schema": schema_check(facts, declared(schemas.GOLD_EVALUATION)),
        "not_null": (frame, not_null("protocol", "policy", "metric", "k", "evaluated_at")),
        "has_rows": (frame, [has_rows()]),
    }


def _gold_tuning(frame: pd.DataFrame, facts: Facts) -> Suite:
    return {
        "schema": schema_check(facts, declared(schemas.GOLD_TUNING)),
        "not_null": (frame, not_null("serving", "accepted", "reason", "tuned_at")),
        "has_rows": (frame, [has_rows()]),
    }


# ---- the registry ----------------------------------------------------------------------------

_SCHEMA = CheckDef("schema", "Every declared column is present with its declared Spark type.")
_NULLS = CheckDef("not_null", "Key and required columns hold no nulls.")
_FRESH_DAY = CheckDef(
    "freshness", "The day has rows and its newest event is within PODREC_CHECKS_FRESHNESS_HOURS of its end."
)
_HAS_ROWS = CheckDef("has_rows", "The partition was written and holds rows.")


def _blocking(check: CheckDef) -> CheckDef:
    return CheckDef(check.name, check.description, blocking=True)


SUITES: tuple[TableSuite, ...] = (
    TableSuite(
        "bronze", "episodes", "ingest_date",
        (
            _SCHEMA, _NULLS,
            CheckDef("ranges", "Durations within a day; languages are ISO 639 codes."),
            CheckDef("unique_keys", "episode_id is a key of each day's snapshot.", blocking=True),
            _HAS_ROWS,
        ),
        _bronze_episodes, sample_by="episode_id",
    ),
    TableSuite(
        "bronze", "user_events", "event_date",
        (
            _SCHEMA, _NULLS,
            CheckDef("ranges", "Known event types; positions are not negative."),
            CheckDef("unique_keys", "Each Kafka (partition, offset) landed once: exactly-once ingestion."),
            CheckDef("has_rows", "The newest day in the table holds rows."),
        ),
        _bronze_user_events, dagster_partitioned=False, sample_by="user_id",
    ),
    TableSuite(
        "bronze", "user_events_rejected", "event_date",
        (_SCHEMA, CheckDef("not_null", "Every rejected record keeps its reason and Kafka position.")),
        _bronze_rejected, drop=("raw",), dagster_partitioned=False,
    ),
    TableSuite(
        "bronze", "impressions", "event_date",
        (
            _SCHEMA, _NULLS,
            CheckDef("ranges", "Buckets 0..99; every list has items, ranks from 1, propensities in (0, 1]."),
            CheckDef("unique_keys", "Each Kafka (partition, offset) landed once: exactly-once ingestion."),
            CheckDef("has_rows", "The newest day in the table holds rows."),
        ),
        _bronze_impressions, dagster_partitioned=False, sample_by="user_id",
        derive={
            "items_count": "size(items)",
            "items_valid": "forall(items, x -> x.rank >= 1 AND (x.propensity IS NULL OR "
                           "(x.propensity > 0 AND x.propensity <= 1)))",
        },
        drop=("items",),
    ),
    TableSuite(
        "bronze", "impressions_rejected", "event_date",
        (_SCHEMA, CheckDef("not_null", "Every rejected record keeps its reason and Kafka position.")),
        _bronze_rejected, drop=("raw",), dagster_partitioned=False,
    ),
    TableSuite(
        "silver", "impressions", "event_date",
        (
            _SCHEMA, _NULLS,
            CheckDef("ranges", "Ranks 1..list length, buckets 0..99, propensities within [0, 1]."),
            CheckDef("unique_keys", "One row per (impression, rank): each served list once."),
            CheckDef("references", "Every served episode is in the catalog."),
        ),
        _silver_impressions, needs=frozenset({"catalog"}), sample_by="user_id",
    ),
    TableSuite(
        "silver", "episodes", None,
        (
            _SCHEMA, _NULLS,
            CheckDef("ranges", "Durations are not negative."),
            _blocking(CheckDef("unique_keys", "episode_id is the catalog's key; serving joins on it.")),
            CheckDef("freshness", "The catalog is rebuilt from the newest bronze/episodes snapshot."),
        ),
        _silver_episodes, needs=frozenset({"bronze_latest"}), sample_by="episode_id",
    ),
    TableSuite(
        "silver", "transcripts", None,
        (
            _SCHEMA, _NULLS,
            CheckDef("ranges", "Audio seconds are not negative."),
            CheckDef("unique_keys", "One transcript per episode."),
            CheckDef("references", "Every transcript belongs to an episode of the catalog."),
        ),
        _silver_transcripts, needs=frozenset({"catalog"}), sample_by="episode_id",
    ),
    TableSuite(
        "silver", "user_events", "event_date",
        (
            _blocking(_SCHEMA), _blocking(_NULLS),
            _blocking(CheckDef("ranges", "Known event types; 0 <= position_s <= episode_duration_s.")),
            _blocking(CheckDef("unique_keys", "event_id is unique: a retried event is counted once.")),
            CheckDef("references", "Every event's episode is in the catalog (no orphan events)."),
            _FRESH_DAY,
        ),
        _silver_user_events, needs=frozenset({"catalog"}), sample_by="user_id",
    ),
    TableSuite(
        "silver", "daily_engagement", "event_date",
        (
            _blocking(_SCHEMA), _blocking(_NULLS),
            _blocking(CheckDef(
                "ranges",
                "max_completion within [0, 1]; plays, listening, confidence not negative; finite scores.",
            )),
            _blocking(CheckDef("unique_keys", "One row per (user, episode, day).")),
            CheckDef("references", "Every engaged episode is in the catalog."),
            _HAS_ROWS,
        ),
        _silver_daily_engagement, needs=frozenset({"catalog"}), sample_by="user_id",
        derive={"engagement_finite": finite_sql("engagement")},
    ),
    TableSuite(
        "gold", "episode_embeddings", None,
        (
            _SCHEMA, _NULLS,
            _blocking(CheckDef("ranges", "Every vector is finite and of the one dimension.")),
            CheckDef("unique_keys", "One vector per (episode, model)."),
            CheckDef("references", "Every vector belongs to an episode of the catalog."),
        ),
        _gold_episode_embeddings, needs=frozenset({"catalog"}), sample_by="episode_id",
        derive={"vector_dims": "size(vector)", "vector_finite": "forall(vector, x -> NOT isnan(x))"},
        drop=("vector",),
    ),
    TableSuite(
        "gold", "episode_similarity", None,
        (
            _SCHEMA, _NULLS,
            CheckDef("ranges", "Similarity within [-1, 1], ranks from 1, no episode its own neighbour."),
            CheckDef("unique_keys", "One row per (episode, neighbour)."),
            CheckDef("references", "Both ends of every pair are in the catalog."),
        ),
        _gold_episode_similarity, needs=frozenset({"catalog"}), sample_by="episode_id",
        derive={"self_pair": "episode_id = neighbor_episode_id"},
    ),
    TableSuite(
        "gold", "als_factors", "model_date",
        (
            _blocking(_SCHEMA), _blocking(_NULLS),
            _blocking(CheckDef("ranges", "Sides user/item, interactions >= 1, finite factors of one rank.")),
            _blocking(CheckDef("unique_keys", "One factor vector per (side, id) in a model.")),
            _HAS_ROWS,
        ),
        _gold_als_factors, sample_by="id",
        derive={"factor_dims": "size(factors)", "factors_finite": "forall(factors, x -> NOT isnan(x))"},
        drop=("factors",),
    ),
    TableSuite(
        "gold", "recommendations", "rec_date",
        (
            _blocking(_SCHEMA), _blocking(_NULLS),
            CheckDef("scores_are_numbers", "No NaN, infinite or null score (serving gate).", blocking=True),
            CheckDef(
                "every_active_user_has_k",
                "Every listener in the model window has exactly K recommendations (serving gate).",
                blocking=True,
            ),
            CheckDef(
                "one_variant_per_canonical",
                "No list holds two language variants of one canonical episode (serving gate).",
                blocking=True,
            ),
            _blocking(CheckDef("ranges", "Ranks 1..K, buckets 0..99.")),
            _blocking(CheckDef("unique_keys", "One row per (user, rank) and per (user, episode).")),
            _blocking(CheckDef("references", "Every recommended episode is in the catalog.")),
        ),
        _gold_recommendations, needs=frozenset({"catalog", "active_users"}), sample_by="user_id",
        derive={"score_finite": finite_sql("score")},
    ),
    TableSuite(
        "gold", "evaluation", "eval_date",
        (_SCHEMA, _NULLS, _HAS_ROWS),
        _gold_evaluation,
    ),
    TableSuite(
        "gold", "tuning", "tuned_date",
        (_SCHEMA, _NULLS, _HAS_ROWS),
        _gold_tuning,
    ),
)  # fmt: skip


def suite(key: str) -> TableSuite:
    return next(s for s in SUITES if s.key == key)
