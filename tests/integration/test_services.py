"""Round trips through the real Kafka broker and the real FerretDB."""

import uuid

import pytest

from resources import build_resources

pytestmark = pytest.mark.integration


def test_kafka_produce_consume_round_trip(local_infra, settings) -> None:
    kafka = build_resources(settings)["kafka"]
    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
    producer = kafka.producer()
    sent = [f"event-{i}".encode() for i in range(50)]
    for i, value in enumerate(sent):
        producer.produce(topic, key=str(i % 5).encode(), value=value)
    assert producer.flush(30) == 0

    consumer = kafka.consumer(group_id=f"test-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([topic])
    received = []
    try:
        for _ in range(120):
            msg = consumer.poll(0.5)
            if msg is None:
                if len(received) == len(sent):
                    break
                continue
            assert msg.error() is None, msg.error()
            received.append(msg.value())
    finally:
        consumer.close()
    assert sorted(received) == sorted(sent)


def test_ferretdb_insert_find_index(local_infra, settings) -> None:
    mongo = build_resources(settings)["mongo"]
    coll = mongo.db()[f"t_{uuid.uuid4().hex[:8]}"]
    coll.insert_many([{"user_id": f"u{i}", "rank": i % 3, "episode_id": f"e{i}"} for i in range(30)])
    name = coll.create_index([("user_id", 1), ("rank", 1)], unique=True)
    assert name in coll.index_information()
    found = list(coll.find({"rank": 2}, {"_id": 0, "user_id": 1}).sort("user_id", 1))
    assert found[:2] == [{"user_id": "u11"}, {"user_id": "u14"}]
    assert coll.count_documents({}) == 30
    with pytest.raises(Exception, match="duplicate key"):
        coll.insert_one({"user_id": "u0", "rank": 0})
