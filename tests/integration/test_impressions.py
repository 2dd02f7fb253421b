"""Served lists → signed impressions on the real Kafka → bronze (exactly once) → silver, forged ones
rejected with their reasons, a SASL broker reached by the API's producer, and an API that still
answers when Kafka is away or refuses it: the real FerretDB, brokers, Spark + Delta and Dagster."""

import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, materialize
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import bearer
from podrec.ingest import impression_tables
from podrec.ingest.impression_tables import impression_kind
from podrec.ingest.impressions import sign
from podrec.lake.delta import read
from podrec.recsys.ab import assign
from podrec.serving.impression_log import CREDENTIALS_REFUSED
from podrec.serving.publish import publish
from podrec.settings import PodrecSettings, impressions_signing_key
from podrec_app.localinfra import free_port
from resources import build_resources
from tests.conftest import assets
from tests.integration import test_kafka_sasl
from tests.integration.test_api import EXPERIMENT, version_docs
from tests.integration.test_ingest import isolated

pytestmark = pytest.mark.integration
# The SASL broker of test_kafka_sasl (its own module-scoped fixture, here with one mechanism).
sasl_settings = test_kafka_sasl.sasl_settings

SERVED_AT = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
DAY = SERVED_AT.date().isoformat()
# Published the day before: the exploration pool of Portuguese and Italian lists of two (c1, c2).
NEW = {"e3pt", "e4it"}


def served_settings(settings: PodrecSettings, tmp_path: Path) -> PodrecSettings:
    return isolated(settings, tmp_path).with_(
        mongo={"database": f"imp_{uuid.uuid4().hex[:8]}"},
        ab={"experiment_id": EXPERIMENT},
        exploration={"share": 0.5, "slots": 1},
    )


def publish_with_new_episodes(own: PodrecSettings) -> None:
    lists, similar, episodes = version_docs()
    for episode in episodes:
        age = timedelta(days=1 if episode["_id"] in NEW else 400)
        episode["published_at"] = SERVED_AT - age
    db = build_resources(own)["mongo"].db()
    assert publish(db, "2026-11-20", lists, similar, episodes, k=10, version="v20261120T000000Z-1")["passed"]


def ingest(spark, own: PodrecSettings) -> impression_tables.IngestReport:
    """What is new on ``own``'s impressions topic, into its bronze tables, checked with its rules."""
    resources = build_resources(own)
    lake = resources["lake"]
    return impression_tables.run(
        spark, resources["kafka"], own.kafka.impressions_topic, lake.table("bronze", "impressions"),
        lake.table("bronze", "impressions_rejected"), kind=impression_kind(own),
    )  # fmt: skip


def serve(own: PodrecSettings, lists: int) -> dict[str, dict[str, Any]]:
    """``lists`` lists served by the API over ``own`` (u0, u1, …), all delivered: the answers by id."""
    answers = {}
    with TestClient(create_app(own, clock=lambda: SERVED_AT), headers=bearer(own, "tests")) as client:
        for i in range(lists):
            body = client.get(f"/users/u{i}/recommendations", params={"k": 2}).json()
            answers[body["impression_id"]] = body
        assert client.app.state.impressions.drain(60)
        metrics = client.get("/metrics/impressions").json()
    assert metrics["impressions"]["delivered"] == lists, metrics
    assert (metrics["impressions_undelivered"], metrics["impressions_problem"]) == ({}, None)
    return answers


def test_served_lists_land_in_silver_impressions_with_their_items_and_ranks(
    local_infra, spark, settings: PodrecSettings, tmp_path: Path
) -> None:
    own = served_settings(settings, tmp_path)
    publish_with_new_episodes(own)
    answers = {}
    with TestClient(create_app(own, clock=lambda: SERVED_AT), headers=bearer(own, "tests")) as client:
        for i in range(20):
            locale = "it-IT" if i % 2 else "pt-BR"
            body = client.get(
                f"/users/u{i}/recommendations",
                params={"locale": locale, "k": 2},
                headers={"X-Request-Id": f"r{i}"},
            ).json()
            answers[body["impression_id"]] = body
        # A client retrying request r3 is the same impression: ingestion keeps it once.
        retried = client.get(
            "/users/u3/recommendations", params={"locale": "it-IT"}, headers={"X-Request-Id": "r3"}
        )
        assert retried.json()["impression_id"] in answers
        assert client.app.state.impressions.drain(60)
        assert client.get("/metrics/impressions").json()["impressions"]["delivered"] == 21

    resources = build_resources(own)
    lake = resources["lake"]
    bronze = lake.table("bronze", "impressions")
    report = ingest(spark, own)
    assert (report.consumed, report.accepted, report.rejected) == (21, 20, 1)
    assert report.reasons == {"duplicate impression_id": 1} and report.event_dates == [DAY]
    again = ingest(spark, own)
    assert again.consumed == 0 and read(spark, bronze).count() == 20

    job = assets(own, "silver/impressions")
    instance = DagsterInstance.ephemeral()
    for _ in range(2):  # a second run replaces the day: idempotent
        assert materialize(job, partition_key=DAY, resources=resources, instance=instance).success
    rows = read(spark, lake.table("silver", "impressions")).toPandas()
    assert len(rows) == sum(len(a["items"]) for a in answers.values())
    for impression_id, answer in answers.items():
        stored = rows[rows["impression_id"] == impression_id].sort_values("rank")
        assert list(stored["episode_id"]) == [i["episode_id"] for i in answer["items"]]
        assert list(stored["rank"]) == [i["rank"] for i in answer["items"]]
        assert list(stored["propensity"]) == pytest.approx([i["propensity"] for i in answer["items"]])
        assert set(stored["policy"]) == {answer["policy"]} and set(stored["bucket"]) == {answer["bucket"]}
        assert set(stored["served_version"]) == {"v20261120T000000Z-1"}
    explored = rows[rows["explored"]]
    # Share 0.5: some lists explored, each time with a new episode of the listener's language (pool of 1).
    assert 0 < explored["impression_id"].nunique() < 20
    assert set(explored["episode_id"]) <= NEW and set(explored["propensity"]) == {0.5}
    assert set(rows[~rows["explored"] & (rows["rank"] < rows["list_length"])]["propensity"]) == {1.0}


def test_the_api_answers_when_kafka_is_away_and_counts_what_it_dropped(
    local_infra, settings: PodrecSettings, tmp_path: Path
) -> None:
    own = served_settings(settings, tmp_path).with_(
        kafka={"bootstrap": f"127.0.0.1:{free_port()}"},  # nothing listens there
        api={"impressions_buffer": 4},
    )
    publish_with_new_episodes(own)
    with TestClient(create_app(own, clock=lambda: SERVED_AT), headers=bearer(own, "tests")) as client:
        for i in range(30):
            response = client.get(f"/users/u{i % 20}/recommendations")
            assert response.status_code == 200 and response.json()["items"]
        assert client.get("/health").json() == {"status": "ok"}
        counts = client.get("/metrics/impressions").json()["impressions"]
    # Nothing delivered; at most 4 wait in the log's buffer and 4 in the producer's, the rest were dropped.
    assert counts["logged"] == 30 and counts["delivered"] == 0
    assert counts["dropped"] + counts["undelivered"] >= 30 - 2 * 4
    assert counts["dropped"] + counts["undelivered"] + counts["waiting"] == 30


def test_before_anything_is_served_the_topic_is_missing_and_the_tables_are_empty(
    local_infra, spark, settings: PodrecSettings, tmp_path: Path
) -> None:
    # (A missing events topic stays an error: tests/integration/test_concurrent_ingest.py.)
    own = served_settings(settings, tmp_path).with_(
        kafka={"impressions_topic": f"none-{uuid.uuid4().hex[:8]}"}
    )
    lake = build_resources(own)["lake"]
    bronze, rejected = lake.table("bronze", "impressions"), lake.table("bronze", "impressions_rejected")
    report = ingest(spark, own)
    assert (report.consumed, report.accepted, report.rejected) == (0, 0, 0)
    assert read(spark, bronze).count() == 0 and read(spark, rejected).count() == 0


def test_forged_impressions_are_rejected_with_their_reasons_and_genuine_ones_accepted(
    local_infra, spark, settings: PodrecSettings, tmp_path: Path
) -> None:
    own = served_settings(settings, tmp_path).with_(exploration={"share": 0.0})
    publish_with_new_episodes(own)
    genuine = serve(own, 6)
    served = next(iter(genuine.values()))
    user = served["user_id"]
    bucket, policy = assign(user, own.ab)
    key = impressions_signing_key(own)

    def body(**changes: object) -> dict[str, Any]:
        record = {
            "impression_id": str(uuid.uuid4()), "user_id": user, "served_version": served["serving_version"],
            "experiment_id": EXPERIMENT, "bucket": bucket, "policy": policy,
            "served_at": "2026-11-21T09:30:00Z",
            "items": [{"episode_id": i["episode_id"], "rank": i["rank"]} for i in served["items"]],
        }  # fmt: skip
        return {**record, **changes}

    def signed(record: dict[str, Any], with_key: bytes = key) -> dict[str, Any]:
        return {**record, "signature": sign(record, with_key)}

    other = "als_only" if policy == "hybrid" else "hybrid"
    tiny = [{"episode_id": "e3pt", "rank": 1, "propensity": 1e-300, "explored": True}]
    forged = [
        # By anyone who can write the topic, without the key:
        (body(policy=other), "bad signature: the record is not signed"),
        (body(items=tiny), "bad signature: the record is not signed"),
        ({**signed(body()), "items": tiny}, "bad signature: it does not match the record"),
        (
            signed(body(policy=other), with_key=b"a-guessed-key-of-32-characters!!"),
            "bad signature: it does not",
        ),
        # Signed with the API's key, yet not what the API serves (a leaked key, a misconfigured API):
        (
            signed(body(policy=other)),
            f"wrong arm: experiment {EXPERIMENT} serves bucket {bucket} with {policy}",
        ),
        (signed(body(items=tiny)), "propensity below the floor: items[0].propensity is under 0.001"),
    ]
    producer = build_resources(own)["kafka"].producer()
    for record, _ in forged:
        producer.produce(own.kafka.impressions_topic, key=user.encode(), value=json.dumps(record).encode())
    assert producer.flush(30) == 0

    report = ingest(spark, own)
    assert (report.consumed, report.accepted, report.rejected) == (12, 6, 6)
    assert report.reasons == {"bad signature": 4, "wrong arm": 1, "propensity below the floor": 1}
    lake = build_resources(own)["lake"]
    accepted = read(spark, lake.table("bronze", "impressions")).toPandas()
    assert set(accepted["impression_id"]) == set(genuine)
    rejected = read(spark, lake.table("bronze", "impressions_rejected")).toPandas()
    by_text = dict(zip(rejected["raw_text"], rejected["error"], strict=True))
    for record, reason in forged:
        assert by_text[json.dumps(record)].startswith(reason)


def sasl(own: PodrecSettings, broker: PodrecSettings) -> PodrecSettings:
    """``own`` (its topics, group, lake, data folder and MongoDB) over the SASL ``broker``."""
    security = ("bootstrap", "security_protocol", "sasl_mechanism", "sasl_username", "sasl_password")
    return own.with_(kafka={name: getattr(broker.kafka, name) for name in security})


@pytest.mark.parametrize("sasl_settings", ["SCRAM-SHA-512"], indirect=True)  # one SASL broker is enough
def test_the_api_delivers_signed_impressions_over_sasl_and_they_are_ingested(
    sasl_settings: PodrecSettings, local_infra, spark, settings: PodrecSettings, tmp_path: Path
) -> None:
    own = sasl(served_settings(settings, tmp_path), sasl_settings)
    publish_with_new_episodes(own)
    serve(own, 20)  # every one delivered, nothing undelivered
    report = ingest(spark, own)  # Spark's Kafka source over SASL too
    assert (report.consumed, report.accepted, report.rejected) == (20, 20, 0)


@pytest.mark.parametrize("sasl_settings", ["SCRAM-SHA-512"], indirect=True)
def test_refused_credentials_are_reported_at_once_logged_once_and_counted_undelivered(
    sasl_settings: PodrecSettings,
    local_infra,
    settings: PodrecSettings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    own = sasl(served_settings(settings, tmp_path), sasl_settings).with_(
        kafka={"sasl_password": "not-the-password"}
    )
    publish_with_new_episodes(own)
    with (
        caplog.at_level(logging.WARNING, logger="podrec.serving.impression_log"),
        TestClient(create_app(own, clock=lambda: SERVED_AT), headers=bearer(own, "tests")) as client,
    ):
        for i in range(20):
            assert client.get(f"/users/u{i}/recommendations").status_code == 200

        def metrics() -> dict[str, Any]:
            return client.get("/metrics/impressions").json()

        deadline = time.monotonic() + 20
        while metrics()["impressions_problem"] is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert metrics()["impressions_problem"] == CREDENTIALS_REFUSED  # long before the records time out
        deadline = time.monotonic() + 90  # librdkafka gives each record up after message.timeout.ms (30 s)
        while metrics()["impressions"]["waiting"] and time.monotonic() < deadline:
            time.sleep(1)
        counts = metrics()
    assert counts["impressions"]["logged"] == counts["impressions"]["undelivered"] == 20
    assert counts["impressions_undelivered"] == {CREDENTIALS_REFUSED: 20}
    (warning,) = [r for r in caplog.records if r.name == "podrec.serving.impression_log"]
    assert "SASL authentication" in warning.getMessage() and "not-the-password" not in caplog.text
