"""Which days an offline evaluation or tuning re-builds before it runs (podrec_app.runs.stale_ranges)."""

from datetime import UTC, date, datetime, timedelta

from podrec_app.runs import stale_ranges

D = [date(2026, 11, 1) + timedelta(days=i) for i in range(6)]
T0 = datetime(2026, 12, 1, 10, tzinfo=UTC)


def test_a_fresh_lake_builds_every_day_in_one_range() -> None:
    assert stale_ranges(D, {d: T0 for d in D}, {}) == [(D[0], D[-1])]


def test_a_lake_built_after_its_last_ingestion_builds_nothing() -> None:
    built = {d: T0 + timedelta(minutes=5) for d in D}
    assert stale_ranges(D, {d: T0 for d in D}, built) == []


def test_only_days_written_since_their_build_or_never_built_are_rebuilt_in_consecutive_ranges() -> None:
    written = {d: T0 for d in D}
    built = {d: T0 + timedelta(minutes=5) for d in D}
    written[D[1]] = written[D[2]] = T0 + timedelta(minutes=9)  # new events landed for the 2nd and 3rd day
    del built[D[5]]  # the last day was never built (a day with no events counts too)
    assert stale_ranges(D, written, built) == [(D[1], D[2]), (D[5], D[5])]
