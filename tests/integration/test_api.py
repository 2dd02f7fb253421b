"""The recommendation API over a version published to the real FerretDB, through FastAPI's client."""

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import bearer
from podrec.recsys.ab import assign, bucket
from podrec.serving.publish import publish, rollback
from podrec.settings import AbSettings
from podrec_app import localinfra
from resources import build_resources
from tests.conftest import make_settings

pytestmark = pytest.mark.integration

EXPERIMENT = "exp-api"
POLICY = AbSettings(experiment_id=EXPERIMENT, hybrid_buckets=50)
# canonical → (episode, language, plays) for each variant
CATALOG = {
    "c1": [("e1en", "en", 10), ("e1it", "it", 5)],
    "c2": [("e2en", "en", 7)],
    "c3": [("e3fr", "fr", 3), ("e3pt", "pt", 9)],
    "c4": [("e4en", "en", 4), ("e4it", "it", 8)],
}


def variants(canonical: str) -> list[dict]:
    return [{"episode_id": e, "language": lang, "title": f"title {e}", "plays": plays}
            for e, lang, plays in CATALOG[canonical]]  # fmt: skip


def item(rank: int, canonical: str, episode: str) -> dict:
    return {"rank": rank, "episode_id": episode, "canonical_episode_id": canonical, "score": 1.0 / rank,
            "als_score": None, "content_score": None, "reason": "because",
            "variants": variants(canonical)}  # fmt: skip


def a_list(user_id: str, policy: str, fallback: bool = False, tag: str = "m1") -> dict:
    items = [item(1, "c1", "e1en"), item(2, "c2", "e2en"), item(3, "c3", "e3fr"), item(4, "c4", "e4en")]
    return {"_id": user_id, "user_id": user_id, "fallback": fallback, "language": None, "locale": "en-US",
            "policy": policy, "bucket": bucket(user_id, EXPERIMENT), "experiment_id": EXPERIMENT,
            "model_version": tag, "rec_date": "2026-11-20", "items": items}  # fmt: skip


def version_docs(tag: str = "m1") -> tuple[list[dict], list[dict], list[dict]]:
    lists = [a_list(f"u{i}", assign(f"u{i}", POLICY)[1], tag=tag) for i in range(40)]
    stale = "u-stale"
    lists.append(a_list(stale, "als_only" if assign(stale, POLICY)[1] == "hybrid" else "hybrid", tag=tag))
    for language in ("en", "it"):
        popular = a_list(f"__popular__/{language}", "popular", fallback=True, tag=tag)
        popular.update(language=language, bucket=None, items=[item(1, "c2", "e2en"), item(2, "c4", "e4en")])
        lists.append(popular)
    episodes = [
        {"_id": e, "episode_id": e, "canonical_episode_id": c, "language": lang, "title": f"title {e}",
         "variants": variants(c)}
        for c, vs in CATALOG.items() for e, lang, _ in vs
    ]  # fmt: skip
    neighbours = [("e1it", "c1", "it", 0.99), ("e4en", "c4", "en", 0.7), ("e2en", "c2", "en", 0.5)]
    similar = [{"_id": "e1en", "episode_id": "e1en", "items": [
        {"rank": r + 1, "episode_id": e, "canonical_episode_id": c, "language": lang, "similarity": sim,
         "variants": variants(c)}
        for r, (e, c, lang, sim) in enumerate(neighbours)
    ]}]  # fmt: skip
    return lists, similar, episodes


def publish_version(db, tag: str, version: str) -> None:
    lists, similar, episodes = version_docs(tag)
    assert publish(db, "2026-11-20", lists, similar, episodes, k=10, version=version)["passed"]


@pytest.fixture(scope="module")
def client(local_infra, settings) -> Iterator[TestClient]:
    api_settings = settings.with_(
        mongo={"database": f"api_{uuid.uuid4().hex[:8]}"}, ab={"experiment_id": EXPERIMENT},
        api={"version_cache_s": 0.0},
    )  # fmt: skip
    db = build_resources(api_settings)["mongo"].db()
    publish_version(db, "m1", "v20261120T000000Z-1")
    with TestClient(create_app(api_settings), headers=bearer(api_settings, "tests")) as c:
        c.db = db
        c.settings = api_settings
        yield c
    db.client.drop_database(db.name)


def test_buckets_are_sticky_and_match_the_batch_side(client: TestClient) -> None:
    for i in range(40):
        first = client.get(f"/users/u{i}/recommendations").json()
        again = client.get(f"/users/u{i}/recommendations").json()
        expected_bucket, expected_policy = assign(f"u{i}", POLICY)
        assert first["bucket"] == again["bucket"] == expected_bucket
        assert first["policy"] == ("hybrid" if first["bucket"] < 50 else "als_only") == expected_policy
        assert first["experiment_id"] == EXPERIMENT and first["source"] == "personal" and first["known"]
        assert first["model_version"] == "m1" and first["serving_version"] == "v20261120T000000Z-1"
    policies = {client.get(f"/users/u{i}/recommendations").json()["policy"] for i in range(40)}
    assert policies == {"hybrid", "als_only"}


def test_a_list_made_for_the_other_arm_is_not_served(client: TestClient) -> None:
    body = client.get("/users/u-stale/recommendations").json()
    assert body["known"] and body["source"] == "popular"
    assert body["policy"] == assign("u-stale", POLICY)[1] and "not this listener's arm" in body["note"]


def test_locale_picks_one_variant_per_canonical_episode(client: TestClient) -> None:
    def shown(locale: str | None) -> list[str]:
        params = {"locale": locale} if locale else {}
        return [
            i["episode_id"] for i in client.get("/users/u1/recommendations", params=params).json()["items"]
        ]

    # the listener's own locale (en-US): English where it exists; c3 has none → most played (pt)
    assert shown(None) == ["e1en", "e2en", "e3pt", "e4en"]
    assert shown("it-IT") == ["e1it", "e2en", "e3pt", "e4it"]  # Italian, else the English fallback
    assert shown("fr") == ["e1en", "e2en", "e3fr", "e4en"]
    assert shown("de_DE") == ["e1en", "e2en", "e3pt", "e4en"]
    items = client.get("/users/u1/recommendations", params={"locale": "it-IT", "k": 2}).json()["items"]
    assert [(i["rank"], i["language"], i["title"]) for i in items] == [
        (1, "it", "title e1it"),
        (2, "en", "title e2en"),
    ]


def test_unknown_listener_gets_the_popular_list_of_their_language(client: TestClient) -> None:
    body = client.get("/users/someone-new/recommendations", params={"locale": "it-IT"}).json()
    assert not body["known"] and body["source"] == "popular" and body["language"] == "it"
    assert [i["episode_id"] for i in body["items"]] == ["e2en", "e4it"]
    assert body["bucket"] == bucket("someone-new", EXPERIMENT)
    # no popular list for Korean: the fallback language's
    korean = client.get("/users/someone-new/recommendations", params={"locale": "ko-KR"}).json()
    assert korean["language"] == "ko" and [i["episode_id"] for i in korean["items"]] == ["e2en", "e4en"]


def test_similar_episodes_never_repeat_the_episode_itself(client: TestClient) -> None:
    body = client.get("/episodes/e1en/similar", params={"locale": "it"}).json()
    assert [i["episode_id"] for i in body["items"]] == ["e4it", "e2en"]  # not e1it: same canonical
    assert client.get("/episodes/nope/similar").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        '/users/{"$gt": ""}/recommendations',
        "/users/%7B%22%24gt%22%3A%22%22%7D/recommendations",
        "/users/$where/recommendations",
        "/users/u1/recommendations?k=100000",
        "/users/u1/recommendations?k=0",
        "/users/u1/recommendations?k=ten",
        "/users/u1/recommendations?locale=english-please",
        "/users/u1/recommendations?locale=en-US;drop",
        "/users/" + "x" * 129 + "/recommendations",
        '/episodes/{"$ne": null}/similar',
    ],
)
def test_bad_input_is_refused_before_mongodb(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (404, 422), response.text
    assert response.status_code == 422 or "similar" not in path


def test_a_new_version_or_a_rollback_shows_on_the_next_request(client: TestClient) -> None:
    publish_version(client.db, "m2", "v20261121T000000Z-2")
    assert client.get("/users/u1/recommendations").json()["model_version"] == "m2"
    rollback(client.db)
    assert client.get("/users/u1/recommendations").json()["serving_version"] == "v20261120T000000Z-1"
    assert client.get("/ready").json() == {"status": "ready", "serving_version": "v20261120T000000Z-1"}


def test_mongodb_down_is_503_and_the_api_recovers_by_itself(tmp_path) -> None:
    own = make_settings(tmp_path).with_(ab={"experiment_id": EXPERIMENT})
    localinfra.up(own, only=["ferretdb"])
    try:
        publish_version(build_resources(own)["mongo"].db(), "m1", "v20261120T000000Z-1")
        with TestClient(create_app(own), headers=bearer(own, "tests")) as c:
            assert c.get("/users/u1/recommendations").status_code == 200
            assert localinfra.down(own, only=["ferretdb"]) == ["ferretdb"]
            down = c.get("/users/u1/recommendations")
            assert down.status_code == 503 and "unreachable" in down.json()["detail"]
            assert c.get("/ready").status_code == 503
            assert c.get("/health").status_code == 200  # liveness does not depend on MongoDB
            localinfra.up(own, only=["ferretdb"])
            back = c.get("/users/u1/recommendations")
            assert back.status_code == 200 and back.json()["source"] == "personal"
    finally:
        localinfra.down(own, only=["ferretdb"])


def test_nothing_published_is_503_with_a_hint(local_infra, settings) -> None:
    empty = settings.with_(mongo={"database": f"api_empty_{uuid.uuid4().hex[:8]}"})
    with TestClient(create_app(empty), headers=bearer(empty, "tests")) as c:
        response = c.get("/users/u1/recommendations")
    assert response.status_code == 503 and "run the recommendations job" in response.json()["detail"]
