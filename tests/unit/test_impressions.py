"""The impression wire format and its rules (signed, in the listener's arm, propensities above the
floor), exploration's propensities and the API's non-blocking impression log."""

import json
import logging
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import KafkaError

from podrec.ingest.events import Validated
from podrec.ingest.impressions import Impression, ImpressionRules, sign, validate
from podrec.recsys.ab import assign, bucket
from podrec.serving.exploration import explore
from podrec.serving.impression_log import CREDENTIALS_REFUSED, ImpressionLog
from podrec.settings import AbSettings

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
KEY = b"k" * 32
RULES = ImpressionRules(KEY, AbSettings(experiment_id="exp", hybrid_buckets=50), min_propensity=0.001)
BUCKET, POLICY = assign("u1", RULES.ab)  # 31, hybrid
OTHER_POLICY = "hybrid" if POLICY == "als_only" else "als_only"


def impression(**changes: object) -> Impression:
    fields = dict(
        user_id="u1", served_version="v20261122", experiment_id="exp", bucket=BUCKET, policy=POLICY,
        source="personal", locale="it-IT", model_version="m1", served_at=NOW, impression_id="imp-1",
        items=[{"episode_id": "e1", "rank": 1, "propensity": None, "explored": None},
               {"episode_id": "e2", "rank": 2, "propensity": 0.25, "explored": True}],
    )  # fmt: skip
    fields.update(changes)
    return Impression(**fields)  # type: ignore[arg-type]


def check(raw: bytes | None) -> Validated:
    return validate(raw, NOW, rules=RULES)


def signed(body: dict[str, Any], key: bytes = KEY) -> bytes:
    """``body`` as a record signed with ``key``: what a producer holding that key writes."""
    return json.dumps({**body, "signature": sign(body, key)}).encode()


def test_an_impression_round_trips_through_its_wire_bytes() -> None:
    wire = impression().wire(KEY)
    body = json.loads(wire)
    assert body["served_at"] == "2026-11-23T09:00:00Z" and body["bucket"] == BUCKET
    assert body["items"][0] == {"episode_id": "e1", "rank": 1}  # no propensity where none was set
    assert body["signature"].startswith("hmac-sha256:") and len(body["signature"]) == 12 + 64
    result = check(wire)
    assert result.error is None and result.event is not None
    assert result.event["served_at"] == NOW and result.event["impression_id"] == "imp-1"
    assert result.event["items"][1] == {"episode_id": "e2", "rank": 2, "propensity": 0.25, "explored": True}


def test_a_bad_impression_is_rejected_with_its_reason() -> None:
    def reason(**changes: object) -> str | None:
        body = json.loads(impression().wire(KEY))
        body.update(changes)
        return check(signed(body)).error  # signed as it stands: the rule after the signature speaks

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
    assert check(b"{").error.startswith("bad JSON")
    assert reason(policy="\ud800") == "bad text: policy holds a lone surrogate, which no UTF-8 text can"


def test_forged_impressions_are_rejected_with_their_reasons() -> None:
    genuine = json.loads(impression().wire(KEY))

    def forged(**changes: object) -> dict[str, Any]:
        body = {k: v for k, v in genuine.items() if k != "signature"}
        return {**body, **changes}

    tiny = [{"episode_id": "e1", "rank": 1, "propensity": 1e-300, "explored": True}]
    # Anyone who can write the topic, without the key:
    assert check(json.dumps(forged()).encode()).error == "bad signature: the record is not signed"
    altered = {**genuine, "items": [{"episode_id": "e9", "rank": 1}]}
    assert check(json.dumps(altered).encode()).error == (
        "bad signature: it does not match the record (altered, or signed with another key)"
    )
    assert check(json.dumps({**genuine, "policy": OTHER_POLICY}).encode()).error.startswith(
        "bad signature: it does not match"
    )
    assert check(signed(forged(), key=b"x" * 32)).error.startswith("bad signature: it does not match")
    assert check(json.dumps({**forged(items=tiny), "signature": "hmac-sha256:00"}).encode()).error == (
        "bad signature: expected hmac-sha256: and 64 lowercase hex digits"
    )
    # Signed, yet not what the API serves (a leaked key, or an API configured unlike ingestion):
    assert check(signed(forged(policy=OTHER_POLICY))).error == (
        f"wrong arm: experiment exp serves bucket {BUCKET} with {POLICY}, not this policy"
    )
    assert check(signed(forged(bucket=(BUCKET + 1) % 100))).error == (
        f"wrong arm: bucket {(BUCKET + 1) % 100} is not the listener's bucket {BUCKET} in experiment exp"
    )
    assert check(signed(forged(items=tiny))).error == (
        "propensity below the floor: items[0].propensity is under 0.001"
    )


def test_a_genuine_impression_is_accepted_however_its_fields_are_ordered_or_spaced() -> None:
    body = json.loads(impression().wire(KEY))
    shuffled = dict(reversed(list(body.items())))
    assert check(json.dumps(shuffled, indent=2).encode()).error is None
    at_the_floor = [{"episode_id": "e1", "rank": 1, "propensity": 0.001, "explored": True}]
    assert check(impression(items=at_the_floor).wire(KEY)).error is None


def test_another_experiments_bucket_is_checked_and_its_policy_taken_as_signed() -> None:
    # The configured split is not that experiment's: a list served before the experiment changed.
    old = bucket("u1", "exp-0")
    assert check(impression(experiment_id="exp-0", bucket=old, policy="ranker").wire(KEY)).error is None
    assert check(impression(experiment_id="exp-0", bucket=(old + 1) % 100).wire(KEY)).error == (
        f"wrong arm: bucket {(old + 1) % 100} is not the listener's bucket {old} in its experiment"
    )


def test_the_signing_key_never_shows() -> None:
    assert repr(KEY)[2:-1] not in repr(RULES)


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
        self.error_cb = config["error_cb"]
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
    log = ImpressionLog(StalledProducer, "imp", capacity=3, key=KEY)
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


def keeping(producer: type[StalledProducer], made: list[Any]) -> Callable[[dict], Any]:
    """A producer factory that keeps what it makes, for a test to look into."""

    def make(config: dict) -> Any:
        made.append(producer(config))
        return made[-1]

    return make


def test_a_healthy_broker_gets_every_impression_signed() -> None:
    made: list[Producer] = []
    log = ImpressionLog(keeping(Producer, made), "imp", capacity=100, key=KEY)
    for i in range(20):
        assert log.log(impression(impression_id=f"i{i}"))
    assert log.drain(5)
    assert log.metrics() | {"capacity": 0} == {"logged": 20, "delivered": 20, "dropped": 0, "undelivered": 0,
                                               "waiting": 0, "capacity": 0}  # fmt: skip
    assert log.undelivered() == {} and log.problem() is None
    assert [check(record).error for record in made[0].held] == [None] * 20  # ingestion accepts them
    log.close()


class RefusingProducer(StalledProducer):
    """A producer whose broker refuses its credentials at every reconnection, until it is told to
    accept them; what it holds times out when it is flushed."""

    accept = False

    def produce(self, topic: str, key: bytes, value: bytes, on_delivery: Any) -> None:
        self.held.append(value)
        self.on_delivery = on_delivery

    def poll(self, timeout: float) -> int:
        if self.accept:
            while self.held:
                self.held.pop()
                self.on_delivery(None, None)
        else:
            self.error_cb(
                KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error: invalid credentials")
            )
        return 0

    def flush(self, timeout: float) -> int:
        while self.held:
            self.held.pop()
            self.on_delivery(KafkaError(KafkaError._MSG_TIMED_OUT, "Local: Message timed out"), None)
        return 0


def test_refused_credentials_are_said_at_once_logged_once_and_the_reason_of_what_was_not_delivered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = ImpressionLog(keeping(RefusingProducer, []), "imp", capacity=100, key=KEY)
    with caplog.at_level(logging.WARNING, logger="podrec.serving.impression_log"):
        for i in range(20):
            log.log(impression(impression_id=f"i{i}"))
        log.drain(0.5)  # long enough for many refusals
        assert log.problem() == CREDENTIALS_REFUSED and log.metrics()["waiting"] == 20
        log.close()  # the records time out
    assert log.metrics()["undelivered"] == 20 and log.undelivered() == {CREDENTIALS_REFUSED: 20}
    (warning,) = caplog.records
    assert CREDENTIALS_REFUSED in warning.getMessage() and "invalid credentials" in warning.getMessage()


def test_credentials_accepted_again_end_the_refusal() -> None:
    producers: list[RefusingProducer] = []
    log = ImpressionLog(keeping(RefusingProducer, producers), "imp", capacity=100, key=KEY)
    log.log(impression())
    log.drain(0.3)
    assert log.problem() == CREDENTIALS_REFUSED
    producers[0].accept = True
    assert log.drain(5) and log.problem() is None and log.metrics()["delivered"] == 1
    log.close()
