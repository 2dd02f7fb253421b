"""The Great Expectations suites on small frames: each planted fault fails its own check only."""

from datetime import date, datetime

import numpy as np
import pandas as pd

from podrec.lake import schemas
from podrec.quality.expectations import validate
from podrec.quality.suites import SUITES, Facts, declared, suite

DAY = date(2026, 11, 20)
CATALOG = frozenset({"e1", "e2", "e3", "e1it"})


def failing(key: str, frame: pd.DataFrame, facts: Facts) -> dict[str, list[str]]:
    """Check name -> the expectations that failed in it."""
    out = {}
    for name, (rows, expectations) in suite(key).build(frame, facts).items():
        outcome = validate(rows, expectations)
        if not outcome.passed:
            out[name] = [f.expectation for f in outcome.failures]
    return out


def engagement(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"user_id": u, "episode_id": e, "plays": 1, "listen_seconds": 600.0, "max_completion": c,
             "likes": 0, "skips": 0, "early_skip": False, "engagement": 1.0, "confidence": 1.0,
             "locale": "en-US", "event_date": DAY}
            for u, e, c in rows
        ]
    )  # fmt: skip


def facts_for(struct: schemas.StructType, **kw) -> Facts:
    return Facts(day=DAY, types=declared(struct), catalog_ids=CATALOG, **kw)


def test_every_suite_builds_exactly_the_checks_it_declares() -> None:
    structs = [v for v in vars(schemas).values() if isinstance(v, schemas.StructType)]
    columns = {f.name for struct in structs for f in struct.fields}
    derived = {c for s in SUITES for c in s.derive} | {"raw_text", "first_seen_date", "canonical_episode_id"}
    empty = pd.DataFrame(columns=sorted(columns | derived))
    for s in SUITES:
        declared_names = [c.name for c in s.checks]
        assert len(set(declared_names)) == len(declared_names), s.key
        assert set(s.build(empty, Facts(day=DAY))) == set(declared_names), s.key


def test_clean_engagement_passes_every_check() -> None:
    good = engagement([("u1", "e1", 0.5), ("u1", "e2", 1.0), ("u2", "e1", 0.0)])
    assert failing("silver/daily_engagement", good, facts_for(schemas.SILVER_DAILY_ENGAGEMENT)) == {}


def test_each_planted_fault_fails_its_own_check() -> None:
    facts = facts_for(schemas.SILVER_DAILY_ENGAGEMENT)
    base = [("u1", "e1", 0.5), ("u2", "e2", 0.9)]
    assert failing("silver/daily_engagement", engagement([*base, (None, "e1", 0.5)]), facts) == {
        "not_null": ["expect_column_values_to_not_be_null"]
    }
    assert failing("silver/daily_engagement", engagement([*base, ("u3", "e3", 1.5)]), facts) == {
        "ranges": ["expect_column_values_to_be_between"]
    }
    assert failing("silver/daily_engagement", engagement([*base, ("u1", "e1", 0.7)]), facts) == {
        "unique_keys": ["expect_compound_columns_to_be_unique"]
    }
    assert failing("silver/daily_engagement", engagement([*base, ("u3", "ghost", 0.2)]), facts) == {
        "references": ["expect_column_values_to_be_in_set"]
    }
    nan = engagement(base).assign(engagement=[1.0, np.inf])
    assert failing("silver/daily_engagement", nan, facts) == {"ranges": ["expect_column_values_to_be_in_set"]}


def test_schema_check_names_the_missing_and_retyped_columns() -> None:
    types = declared(schemas.SILVER_DAILY_ENGAGEMENT)
    types.pop("confidence")
    types["plays"] = "string"
    frame, expectations = suite("silver/daily_engagement").build(
        engagement([("u1", "e1", 0.5)]), Facts(types=types)
    )["schema"]
    (failure,) = validate(frame, expectations).failures
    assert failure.unexpected == 2
    assert set(failure.examples) == {
        ("confidence (missing)", "confidence double"), ("plays string", "plays bigint"),
    }  # fmt: skip


def recommendations(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"user_id": u, "rank": r, "episode_id": e, "canonical_episode_id": c, "score": s,
             "als_score": s, "content_score": 0.0, "policy": "hybrid", "reason": "why", "bucket": 3,
             "experiment_id": "x", "locale": "en", "model_version": "m", "rec_date": DAY}
            for u, r, e, c, s in rows
        ]
    )  # fmt: skip


def test_serving_gates_catch_short_lists_nan_scores_and_two_variants() -> None:
    facts = facts_for(schemas.GOLD_RECOMMENDATIONS, active_users=frozenset({"u1", "u2"}), k=2)
    good = [("u1", 1, "e1", "e1", 0.9), ("u1", 2, "e2", "e2", 0.5), ("u2", 1, "e3", "e3", 0.7),
            ("u2", 2, "e1", "e1", 0.2)]  # fmt: skip
    assert failing("gold/recommendations", recommendations(good), facts) == {}
    short = failing("gold/recommendations", recommendations(good[:3]), facts)
    assert short == {"every_active_user_has_k": ["expect_column_values_to_be_between"]}
    nan = [*good[:3], ("u2", 2, "e1", "e1", float("nan"))]
    assert set(failing("gold/recommendations", recommendations(nan), facts)) == {"scores_are_numbers"}
    variants = [*good[:3], ("u2", 2, "e1it", "e3", 0.2)]  # e1it is a variant of e3's canonical here
    assert failing("gold/recommendations", recommendations(variants), facts) == {
        "one_variant_per_canonical": ["expect_compound_columns_to_be_unique"]
    }
    # A listener active in the window without any list at all is a failure, not a silent skip.
    absent = Facts(**{**facts.__dict__, "active_users": frozenset({"u1", "u2", "u3"})})
    assert set(failing("gold/recommendations", recommendations(good), absent)) == {"every_active_user_has_k"}


def test_freshness_of_a_day_wants_its_newest_event_near_the_end() -> None:
    def events(last: datetime) -> pd.DataFrame:
        return pd.DataFrame(
            {"event_id": ["a", "b"], "user_id": "u", "episode_id": "e1", "event_type": "play",
             "position_s": 1.0, "episode_duration_s": 10.0, "occurred_at": [datetime(2026, 11, 20, 1), last],
             "kafka_partition": 0, "kafka_offset": [1, 2]}
        )  # fmt: skip

    facts = Facts(day=DAY, catalog_ids=CATALOG, freshness_hours=6)
    types = suite("silver/user_events").build(events(datetime(2026, 11, 20, 23)), facts)
    assert validate(*types["freshness"]).passed
    stalled = suite("silver/user_events").build(events(datetime(2026, 11, 20, 12)), facts)
    assert not validate(*stalled["freshness"]).passed
