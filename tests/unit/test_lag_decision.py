from datetime import UTC, datetime, timedelta

from podrec.ingest.kafka_offsets import PartitionOffsets
from sensors.kafka_lag import assess

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def offsets(*lags: int) -> list[PartitionOffsets]:
    return [PartitionOffsets(i, low=0, high=100 + lag, committed=100) for i, lag in enumerate(lags)]


def test_caught_up_never_runs() -> None:
    d = assess(offsets(0, 0), None, NOW, lag_threshold=10, max_age_s=60)
    assert (d.run, d.lag) == (False, 0)
    assert "caught up" in d.reason


def test_runs_on_lag_summed_over_partitions() -> None:
    d = assess(offsets(4, 6), NOW, NOW, lag_threshold=10, max_age_s=60)
    assert (d.run, d.lag) == (True, 10)


def test_runs_on_age_below_the_lag_threshold() -> None:
    d = assess(offsets(1, 0), NOW - timedelta(seconds=61), NOW, lag_threshold=10, max_age_s=60)
    assert d.run and d.age_s == 61
    d = assess(offsets(1, 0), NOW - timedelta(seconds=59), NOW, lag_threshold=10, max_age_s=60)
    assert not d.run and "59s < 60s" in d.reason


def test_start_skips_what_retention_deleted() -> None:
    p = PartitionOffsets(0, low=50, high=80, committed=20)
    assert (p.start, p.lag, p.lost) == (50, 30, 30)
    assert PartitionOffsets(0, low=0, high=5, committed=None).start == 0
