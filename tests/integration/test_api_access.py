"""Who may call the API, how often, and what it records, over a version on the real FerretDB with its
impressions on the real Kafka: every route against every kind of caller, the rate limits, the access log
and the Prometheus metrics — in process, and through ``podrec serve`` with two workers."""

import json
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.auth import bearer
from podrec.privacy import masked_id
from podrec.settings import PodrecSettings
from podrec_app.localinfra import free_port, running
from resources import build_resources
from tests.conftest import settings_env
from tests.integration.test_api import EXPERIMENT, publish_version
from tests.unit.test_api_auth import IdentityProvider

pytestmark = pytest.mark.integration

VERSION = "v20261120T000000Z-1"
LIST = "/users/{user_id}/recommendations"
# Each route as the table names it, and a request for it (the listener's list is u1's).
ROUTES = {
    f"GET {LIST}": "/users/u1/recommendations",
    "GET /episodes/{episode_id}/similar": "/episodes/e1en/similar",
    "GET /health": "/health",
    "GET /ready": "/ready",
    "GET /metrics": "/metrics",
    "GET /metrics/impressions": "/metrics/impressions",
    "GET /docs": "/docs",
    "GET /openapi.json": "/openapi.json",
    "GET /static/swagger/{path}": "/static/swagger/swagger-ui.css",
}
CALLERS = ("no token", "another listener's token", "own token", "service token", "over the limit")
EXPECTED = {
    f"GET {LIST}": (401, 403, 200, 200, 429),
    "GET /episodes/{episode_id}/similar": (401, 200, 200, 200, 429),
    "GET /health": (200, 200, 200, 200, 200),
    "GET /ready": (200, 200, 200, 200, 429),
    "GET /metrics": (401, 403, 403, 200, 429),
    "GET /metrics/impressions": (401, 403, 403, 200, 429),
    "GET /docs": (200, 200, 200, 200, 200),
    "GET /openapi.json": (200, 200, 200, 200, 200),
    "GET /static/swagger/{path}": (200, 200, 200, 200, 200),
}


@pytest.fixture(scope="module")
def served(local_infra, settings: PodrecSettings) -> Iterator[PodrecSettings]:
    """A published version in a database of its own; impressions to a topic of their own."""
    tag = uuid.uuid4().hex[:8]
    own = settings.with_(
        mongo={"database": f"access_{tag}"}, ab={"experiment_id": EXPERIMENT},
        kafka={"impressions_topic": f"impressions-access-{tag}"}, api={"version_cache_s": 60.0},
    )  # fmt: skip
    db = build_resources(own)["mongo"].db()
    publish_version(db, "m1", VERSION)
    yield own
    db.client.drop_database(db.name)


@contextmanager
def started(settings: PodrecSettings) -> Iterator[FastAPI]:
    """The API over ``settings`` with its lifespan running (its impression producer closed after)."""
    api = create_app(settings)
    with TestClient(api):
        yield api


@pytest.fixture(scope="module")
def app(served: PodrecSettings) -> Iterator[FastAPI]:
    """The API with its default limits, for the whole module."""
    with started(served) as api:
        yield api


def caller(app: FastAPI, settings: PodrecSettings, who: str | None, address: str) -> TestClient:
    """A client of ``app`` from ``address``: ``who`` is a listener id, ``service``, or None (no token)."""
    headers = {} if who is None else bearer(settings, who, "service" if who == "service" else "listener")
    return TestClient(app, headers=headers, client=(address, 40_000))


def status_table(app: FastAPI, tight: FastAPI, settings: PodrecSettings) -> dict[str, tuple[int, ...]]:
    """Each route's status for each caller; 'over the limit' is the second request of a caller whose
    bucket holds one (``tight``): a listener's own token on listener routes, a service's on service
    routes, no token on the rest — each from an address of its own."""
    table = {}
    for n, (route, path) in enumerate(ROUTES.items()):
        row = [
            caller(app, settings, who, f"10.0.{n}.{i}").get(path).status_code
            for i, who in enumerate((None, "u2", "u1", "service"))
        ]
        over = "u1" if route in (f"GET {LIST}", "GET /episodes/{episode_id}/similar") else None
        over = "service" if "/metrics" in route else over
        limited = caller(tight, settings, over, f"10.1.{n}.0")
        limited.get(path)
        row.append(limited.get(path).status_code)
        table[route] = tuple(row)
    return table


def markdown(table: dict[str, tuple[int, ...]]) -> str:
    lines = ["| route | " + " | ".join(CALLERS) + " |", "| --- |" + " --- |" * len(CALLERS)]
    lines += [f"| `{route}` | " + " | ".join(map(str, row)) + " |" for route, row in table.items()]
    return "\n".join(lines)


def test_every_route_answers_each_kind_of_caller_as_its_rule_says(app, served) -> None:
    # One request a burst: rates of 1 per 1,000 s, so a caller's second request is over its limit.
    slow = {"rate_listener_per_s": 0.001, "rate_service_per_s": 0.001, "rate_address_per_s": 0.001}
    with started(served.with_(api={**slow, "rate_burst_s": 1.0})) as tight:
        table = status_table(app, tight, served)
    print("\n" + markdown(table))
    assert table == EXPECTED


def test_a_refusal_is_one_line_that_says_why_and_how_to_retry(app, served) -> None:
    anonymous = caller(app, served, None, "10.2.0.1")
    missing = anonymous.get("/users/u1/recommendations")
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="podrec"'
    forged = anonymous.get("/users/u1/recommendations", headers={"Authorization": "Bearer e30.e30.sig"})
    assert forged.status_code == 401 and 'error="invalid_token"' in forged.headers["WWW-Authenticate"]
    other = caller(app, served, "u2", "10.2.0.2").get("/users/u1/recommendations")
    assert other.status_code == 403 and 'error="insufficient_scope"' in other.headers["WWW-Authenticate"]
    with started(served.with_(api={"rate_listener_per_s": 0.5, "rate_burst_s": 4.0})) as tight:  # two a burst
        own = caller(tight, served, "u3", "10.2.0.3")
        assert [own.get("/users/u3/recommendations").status_code for _ in range(2)] == [200, 200]
        over = own.get("/users/u3/recommendations")
    assert over.status_code == 429 and over.headers["Retry-After"] == "2"  # one request back in 1/0.5 s
    for refused in (missing, forged, other, over):
        assert list(refused.json()) == ["detail"] and "\n" not in refused.text


def test_a_listener_over_their_limit_is_refused_from_any_address(served) -> None:
    with started(served.with_(api={"rate_listener_per_s": 0.001})) as api:  # a bucket of one request
        statuses = [caller(api, served, "u4", f"10.3.0.{i}").get("/users/u4/recommendations").status_code
                    for i in range(3)]  # fmt: skip
    assert statuses == [200, 429, 429]


def test_one_address_is_limited_across_tokens_but_a_verified_service_is_not(served) -> None:
    with started(served.with_(api={"rate_address_per_s": 1.0, "rate_burst_s": 2.0})) as api:  # two a burst
        service = caller(api, served, "service", "10.4.0.1")
        assert service.get("/users/u5/recommendations").status_code == 200  # verified: exempt from now on
        listeners = [caller(api, served, f"u{i}", "10.4.0.1").get(f"/users/u{i}/recommendations")
                     for i in (6, 7)]  # fmt: skip
        assert [r.status_code for r in listeners] == [200, 429]  # a new token per request gains nothing
        assert [service.get(f"/users/u{i}/recommendations").status_code for i in range(8, 11)] == [200] * 3


def test_a_refused_request_logs_no_impression(app, served) -> None:
    log = app.state.impressions

    def logged_after(client: TestClient, path: str, status: int) -> int:
        before = log.metrics()["logged"]
        assert client.get(path).status_code == status
        return log.metrics()["logged"] - before

    assert logged_after(caller(app, served, None, "10.5.0.1"), "/users/u1/recommendations", 401) == 0
    assert logged_after(caller(app, served, "u2", "10.5.0.2"), "/users/u1/recommendations", 403) == 0
    assert logged_after(caller(app, served, "u1", "10.5.0.3"), "/users/u1/recommendations", 200) == 1
    with started(served.with_(api={"rate_listener_per_s": 0.001})) as tight:
        limited = caller(tight, served, "u1", "10.5.0.4")
        assert [limited.get("/users/u1/recommendations").status_code for _ in range(2)] == [200, 429]
        assert tight.state.impressions.metrics()["logged"] == 1


def test_reasons_and_whether_a_listener_has_a_list_are_theirs_and_the_services(app, served) -> None:
    own = caller(app, served, "u1", "10.6.0.1").get("/users/u1/recommendations").json()
    service = caller(app, served, "service", "10.6.0.2").get("/users/u-stale/recommendations").json()
    assert own["known"] and own["source"] == "personal" and {i["reason"] for i in own["items"]} == {"because"}
    assert service["known"] and "not this listener's arm" in service["note"]
    with started(served.with_(api={"auth": "off"})) as off:  # nobody asked: nobody is the listener
        anyone = TestClient(off)
        anonymous = anyone.get("/users/u1/recommendations").json()
        stale = anyone.get("/users/u-stale/recommendations").json()
    assert (anonymous["known"], anonymous["source"], anonymous["note"]) == (None, None, None)
    assert [i["reason"] for i in anonymous["items"]] == [None] * 4 and stale["note"] is None
    assert [i["episode_id"] for i in anonymous["items"]] == [i["episode_id"] for i in own["items"]]


def test_rs256_tokens_from_an_identity_providers_jwks_are_accepted(served) -> None:
    provider = IdentityProvider()
    try:
        own = served.with_(api={"auth": "jwks", "auth_jwks_url": provider.url, "auth_audience": "podrec"})
        with started(own) as api:
            client = TestClient(api, client=("10.7.0.1", 40_000))
            token = provider.token(sub="u1", aud="podrec")
            answer = client.get("/users/u1/recommendations", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200 and answer.json()["known"]
            minted = bearer(served, "u1", "listener")  # podrec's own HS256 key means nothing here
            assert client.get("/users/u1/recommendations", headers=minted).status_code == 401
    finally:
        provider.server.shutdown()


def test_access_log_lines_name_the_route_and_a_hash_never_an_id_or_a_reason(served, capsys) -> None:
    with started(served) as api:  # started here: its log goes to this test's captured stdout
        own = caller(api, served, "u1", "10.8.0.1")
        answer = own.get("/users/u1/recommendations", headers={"X-Request-Id": "req-42"})
        caller(api, served, "u2", "10.8.0.2").get("/users/u1/recommendations")
        caller(api, served, "service", "10.8.0.3").get("/users/u-stale/recommendations")
        unnamed = caller(api, served, None, "10.8.0.4").get("/users/u17/recommendations?locale=it-IT")
        own.get("/episodes/nope/similar")
        own.get("/users/u1/nothing-here")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith('{"time"')]
    records = [json.loads(line) for line in lines]
    assert [(r["route"], r["status"], r["scope"]) for r in records] == [
        (LIST, 200, "listener"), (LIST, 403, "listener"), (LIST, 200, "service"), (LIST, 401, None),
        ("/episodes/{episode_id}/similar", 404, "listener"), ("unmatched", 404, None),
    ]  # fmt: skip
    fields = {"time", "request_id", "method", "route", "status", "latency_ms", "subject", "scope"}
    assert set(records[0]) == fields
    assert records[0]["request_id"] == answer.headers["X-Request-Id"] == "req-42"
    assert records[3]["request_id"] == unnamed.headers["X-Request-Id"] != records[4]["request_id"]
    assert (records[0]["subject"], records[1]["subject"], records[3]["subject"]) == (
        masked_id("u1"), masked_id("u2"), None,
    )  # fmt: skip
    for line in lines:  # no listener id, no reason, no note, no query, no title
        for secret in ("u1", "u2", "u17", "u-stale", "because", "arm", "it-IT", "title", "nothing-here"):
            assert secret not in line, (secret, line)


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample(family: Any, name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_a_scrape_after_n_requests_counts_n_in_process(served) -> None:
    api = create_app(served)
    with TestClient(api, headers=bearer(served, "scraper"), client=("10.9.0.1", 40_000)) as client:
        for i in range(25):
            assert client.get(f"/users/u{i}/recommendations").status_code == 200
        client.get("/users/nobody-here/recommendations")  # unknown: a miss, then a negative hit
        client.get("/users/nobody-here/recommendations")
        assert api.state.impressions.drain(30)
        scraped = families(client.get("/metrics").text)
    requests_ = scraped["podrec_api_request_duration_seconds"]
    assert sample(requests_, "podrec_api_request_duration_seconds_count", route=LIST, status="200") == 27
    lookups = scraped["podrec_api_cache_lookups"]
    assert (
        sample(lookups, "podrec_api_cache_lookups_total", kind="recommendations", result="negative_hit") == 1
    )
    impressions = scraped["podrec_api_impressions"]
    assert sample(impressions, "podrec_api_impressions_total", outcome="logged") == 27
    assert sample(impressions, "podrec_api_impressions_total", outcome="delivered") == 27


def test_podrec_serve_sums_every_workers_counts_in_one_scrape(served, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    folder = served.data.path / "api" / f"metrics-{port}"
    folder.mkdir(parents=True)
    (folder / "counter_999999.db").write_bytes(b"a dead run's counts")  # emptied at start
    env = {**settings_env(served), "PODREC_MONGO_DATABASE": served.mongo.database,
           "PODREC_AB_EXPERIMENT_ID": EXPERIMENT, "PODREC_API_VERSION_CACHE_S": "60",
           "PODREC_KAFKA_IMPRESSIONS_TOPIC": served.kafka.impressions_topic}  # fmt: skip
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    service = bearer(served, "scraper")
    n = 60
    command = [sys.executable, "-m", "podrec_app.cli", "serve", "--port", str(port), "--workers", "2"]
    with running(command, f"{base}/health", env=env):
        for i in range(n):  # a new connection each: the kernel hands them to either worker
            assert requests.get(f"{base}/users/u{i % 40}/recommendations", headers=service, timeout=10).ok
        deadline = time.monotonic() + 60
        while True:  # impressions are copied into the counters every second, delivered within a few
            scraped = families(requests.get(f"{base}/metrics", headers=service, timeout=10).text)
            outcomes = scraped["podrec_api_impressions"]
            delivered = sample(outcomes, "podrec_api_impressions_total", outcome="delivered")
            if delivered == n or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        pids = {path.stem.rsplit("_", 1)[1] for path in folder.glob("*.db")}
    requests_ = scraped["podrec_api_request_duration_seconds"]
    assert sample(requests_, "podrec_api_request_duration_seconds_count", route=LIST, status="200") == n
    assert sample(outcomes, "podrec_api_impressions_total", outcome="logged") == delivered == n
    assert len(pids) == 2 and "999999" not in pids  # both workers write there; the stale file is gone
