"""The impression wire format, exploration's propensities and the API's non-blocking impression log."""

import json
import random
import threading
from datetime import UTC, datetime

from podrec.ingest.impressions import Impression, validate
from podrec.serving.exploration import explore
from podrec.serving.impression_log import ImpressionLog

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def impression(**changes: object) -> Impression:
    fields = dict(
        user_id="u1", served_version="v20261122", experiment_id="exp", bucket=7, policy="hybrid",
        source="personal", locale="it-IT", model_version="m1", served_at=NOW, impression_id="imp-1",
        items=[{"episode_id": "e1", "rank": 1, "propensity": None, "explored": None},
               {"episode_id": "e2", "rank": 2, "propensity": 0.25, "explored": True}],
    )  # fmt: skip
    fields.update(changes)
    return Impression(**fields)  # type: ignore[arg-type]


def test_an_impression_round_trips_through_its_wire_bytes() -> None:
    wire = impression().wire()
    body = json.loads(wire)
    assert body["served_at"] == "2026-11-23T09:00:00Z" and body["bucket"] == 7
    assert body["items"][0] == {"episode_id": "e1", "rank": 1}  # no propensity where none was set
    result = validate(wire, NOW)
    assert result.error is None and result.event is not None
    assert result.event["served_at"] == NOW and result.event["impression_id"] == "imp-1"
    assert result.event["items"][1] == {"episode_id": "e2", "rank": 2, "propensity": 0.25, "explored": True}


def test_a_bad_impression_is_rejected_with_its_reason() -> None:
    def reason(**changes: object) -> str | None:
        body = json.loads(impression().wire())
        body.update(changes)
        return validate(json.dumps(body).encode(), NOW).error

    assert reason(items=[]) == "missing field(s): items"
    assert reason(bucket=100) == "wrong type: bucket must be an integer in 0..99"
    assert (
        reason(items=[{"episode_id": "e1", "rank": 0}])
        == "bad item: items[0].rank must be an integer in 1..500"
    )
    assert reason(items=[{"episode_id": "e1", "rank": 1, "propensity": 1.5}]).startswith("bad item")
    assert reason(items=[{"episode_id": "a", "rank": 1}, {"episode_id": "b", "rank": 1}]).endswith(
        "share a rank"
    )
    assert reason(served_at="2026-11-23T09:00:00").startswith("bad served_at")
    assert reason(served_at="2026-11-23T10:00:00Z").startswith("served_at in the future")
    assert validate(b"{", NOW).error.startswith("bad JSON")


ITEMS = [{"rank": r, "episode_id": f"e{r}", "canonical_episode_id": f"c{r}"} for r in (1, 2, 3)]
POOL = [{"episode_id": f"n{i}", "canonical_episode_id": f"cn{i}", "language": "it"} for i in range(4)]


def test_exploration_off_changes_nothing_and_logs_no_propensity() -> None:
    assert explore(ITEMS, POOL, 0.0, 1, random.Random(1)) == ITEMS


def test_every_served_item_carries_the_probability_it_had_of_being_shown() -> None:
    lists = [explore(ITEMS, [*POOL, {"episode_id": "e3", "canonical_episode_id": "c3"}], 0.2, 1,
                     random.Random(seed)) for seed in range(400)]  # fmt: skip
    explored = [served for served in lists if served[2]["explored"]]
    kept = [served for served in lists if not served[2]["explored"]]
    # The first two places are shown either way; the third is the policy's with 1 - 0.2, else one of the
    # 4 new episodes not already listed (c3 is) with 0.2 · 1/4.
    assert all(s[0]["propensity"] == s[1]["propensity"] == 1.0 for s in lists)
    assert all(s[2]["propensity"] == 0.8 and s[2]["episode_id"] == "e3" for s in kept)
    assert all(s[2]["propensity"] == 0.05 and s[2]["episode_id"].startswith("n") for s in explored)
    assert 40 <= len(explored) <= 120  # ~80 of 400 at share 0.2


def test_an_empty_pool_leaves_the_list_shown_for_sure() -> None:
    served = explore(ITEMS, [], 0.5, 1, random.Random(3))
    assert [s["propensity"] for s in served] == [1.0, 1.0, 1.0]


class StalledProducer:
    """A producer whose broker never answers: its queue holds ``capacity`` records, then refuses."""

    def __init__(self, config: dict) -> None:
        self.capacity = config["queue.buffering.max.messages"]
        self.held: list[bytes] = []

    def produce(self, topic: str, key: bytes, value: bytes, on_delivery: object) -> None:
        if len(self.held) >= self.capacity:
            raise BufferError("queue full")
        self.held.append(value)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return len(self.held)


class Producer(StalledProducer):
    """A producer whose broker takes everything at once."""

    def produce(self, topic: str, key: bytes, value: bytes, on_delivery: object) -> None:
        self.held.append(value)
        on_delivery(None, None)  # type: ignore[operator]


def test_a_stalled_broker_costs_dropped_impressions_never_a_blocked_request() -> None:
    log = ImpressionLog(StalledProducer, "imp", capacity=3)
    done = threading.Event()

    def serve() -> None:
        for i in range(50):
            log.log(impression(impression_id=f"i{i}"))
        done.set()

    threading.Thread(target=serve).start()
    assert done.wait(10), "logging blocked"
    log.drain(0.5)
    counts = log.metrics()
    # At most 3 wait in the log's queue and 3 in the producer's: everything else was dropped and counted.
    assert counts["logged"] == 50 and counts["delivered"] == 0
    assert counts["dropped"] >= 44 and counts["dropped"] + counts["waiting"] == 50
    log.close()


def test_a_healthy_broker_gets_every_impression() -> None:
    log = ImpressionLog(Producer, "imp", capacity=100)
    for i in range(20):
        assert log.log(impression(impression_id=f"i{i}"))
    assert log.drain(5)
    assert log.metrics() | {"capacity": 0} == {"logged": 20, "delivered": 20, "dropped": 0, "undelivered": 0,
                                               "waiting": 0, "capacity": 0}  # fmt: skip
    log.close()
