"""Served lists → impressions on the real Kafka → bronze (exactly once) → silver, and an API that still
answers when Kafka is away: the real FerretDB, broker, Spark + Delta and Dagster."""

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize
from fastapi.testclient import TestClient

from api.app import create_app
from podrec.ingest import impression_tables
from podrec.lake.delta import read
from podrec.serving.publish import publish
from podrec.settings import PodrecSettings
from podrec_app.localinfra import free_port
from resources import build_resources
from tests.conftest import assets
from tests.integration.test_api import EXPERIMENT, version_docs
from tests.integration.test_ingest import isolated

pytestmark = pytest.mark.integration

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


def test_served_lists_land_in_silver_impressions_with_their_items_and_ranks(
    local_infra, spark, settings: PodrecSettings, tmp_path: Path
) -> None:
    own = served_settings(settings, tmp_path)
    publish_with_new_episodes(own)
    answers = {}
    with TestClient(create_app(own, clock=lambda: SERVED_AT)) as client:
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
        assert client.get("/metrics").json()["impressions"]["delivered"] == 21

    resources = build_resources(own)
    lake = resources["lake"]
    bronze, rejected = lake.table("bronze", "impressions"), lake.table("bronze", "impressions_rejected")
    report = impression_tables.run(spark, resources["kafka"], own.kafka.impressions_topic, bronze, rejected)
    assert (report.consumed, report.accepted, report.rejected) == (21, 20, 1)
    assert report.reasons == {"duplicate impression_id": 1} and report.event_dates == [DAY]
    again = impression_tables.run(spark, resources["kafka"], own.kafka.impressions_topic, bronze, rejected)
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
    with TestClient(create_app(own, clock=lambda: SERVED_AT)) as client:
        for i in range(30):
            response = client.get(f"/users/u{i % 20}/recommendations")
            assert response.status_code == 200 and response.json()["items"]
        assert client.get("/health").json() == {"status": "ok"}
        counts = client.get("/metrics").json()["impressions"]
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
    resources = build_resources(own)
    lake = resources["lake"]
    bronze, rejected = lake.table("bronze", "impressions"), lake.table("bronze", "impressions_rejected")
    report = impression_tables.run(spark, resources["kafka"], own.kafka.impressions_topic, bronze, rejected)
    assert (report.consumed, report.accepted, report.rejected) == (0, 0, 0)
    assert read(spark, bronze).count() == 0 and read(spark, rejected).count() == 0
