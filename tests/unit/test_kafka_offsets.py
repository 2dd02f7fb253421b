"""Where a group stands: metadata errors are errors, and commits never move a partition back."""

from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException

from podrec.ingest.kafka_offsets import commit, group_offsets
from podrec.ingest.kafka_to_bronze import IngestReport

TOPIC = "events"


class FakeConsumer:
    """The few Consumer calls ``group_offsets`` and ``commit`` make, answered from fixed data."""

    def __init__(self, topic_error=None, committed=None, commit_error=None):
        self.topic_error = topic_error
        self.committed_offsets = committed or {0: 10, 1: 20}
        self.commit_error = commit_error
        self.commits = []

    def list_topics(self, topic, timeout):
        meta = SimpleNamespace(error=self.topic_error, partitions={0: None, 1: None})
        return SimpleNamespace(topics={topic: meta})

    def committed(self, partitions, timeout):
        return [
            SimpleNamespace(
                partition=tp.partition,
                offset=self.committed_offsets.get(tp.partition, -1001),
                error=self.commit_error,
            )
            for tp in partitions
        ]

    def get_watermark_offsets(self, tp, timeout):
        return 0, 100

    def commit(self, offsets, asynchronous):
        self.commits.append({tp.partition: tp.offset for tp in offsets})


def test_offsets_of_a_readable_topic() -> None:
    positions = group_offsets(FakeConsumer(), TOPIC)
    assert [(p.partition, p.start, p.high) for p in positions] == [(0, 10, 100), (1, 20, 100)]


def test_an_unknown_topic_is_an_error_not_an_empty_topic() -> None:
    consumer = FakeConsumer(topic_error=KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
    with pytest.raises(KafkaException, match="topic 'events'"):
        group_offsets(consumer, TOPIC)
    # The lag sensor asks for the lenient reading: nothing written yet, nothing waiting.
    assert group_offsets(consumer, TOPIC, missing_topic_ok=True) == []


def test_a_forbidden_topic_is_an_error_even_where_a_missing_one_is_not() -> None:
    consumer = FakeConsumer(topic_error=KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    with pytest.raises(KafkaException) as raised:
        group_offsets(consumer, TOPIC, missing_topic_ok=True)
    assert raised.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_a_group_offsets_error_is_not_read_as_no_commit_yet() -> None:
    consumer = FakeConsumer(commit_error=KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED))
    with pytest.raises(KafkaException, match="group offsets"):
        group_offsets(consumer, TOPIC)


def test_commit_never_moves_a_partition_back() -> None:
    consumer = FakeConsumer(committed={0: 50, 1: 20})  # another ingestion already committed 50
    commit(consumer, TOPIC, {0: 40, 1: 30})
    assert consumer.commits == [{0: 50, 1: 30}]


def test_a_report_counts_the_union_of_the_ranges_its_plans_read() -> None:
    report = IngestReport()
    report.read({0: (10, 20), 1: (5, 6)})
    report.read({0: (12, 25)})  # a later plan, after another ingestion committed some offsets
    assert report.offsets == {0: (10, 25), 1: (5, 6)}
    assert report.consumed == 16
