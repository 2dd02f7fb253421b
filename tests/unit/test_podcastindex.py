"""The PodcastIndex client against a local HTTP server that answers like the real API."""

import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from podrec.content.podcastindex import PodcastIndexClient, PodcastIndexError, auth_headers

KEY, SECRET = "UXKCGDSYGUUEVQJSYDZHAPIKEY", "secret/yzJe$x7Q#"


def test_signature_matches_a_known_value() -> None:
    headers = auth_headers(KEY, SECRET, "podrec-test/1", 1_700_000_000)
    # printf 'UXKCGDSYGUUEVQJSYDZHAPIKEYsecret/yzJe$x7Q#1700000000' | sha1sum
    assert headers["Authorization"] == "e2f4236dc09cbd8cc822c2ef7a296864b946e0ee"
    assert headers["X-Auth-Date"] == "1700000000"
    assert headers["X-Auth-Key"] == KEY
    assert headers["User-Agent"] == "podrec-test/1"


class FakeApi(BaseHTTPRequestHandler):
    """Answers with recorded-shape bodies; a queue of status codes is served first."""

    statuses: ClassVar[list[int]] = []
    requests: ClassVar[list[tuple[str, dict, dict]]] = []

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        type(self).requests.append((url.path, parse_qs(url.query), dict(self.headers)))
        status = type(self).statuses.pop(0) if type(self).statuses else 200
        if status != 200:
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            return
        if url.path.endswith("/podcasts/trending"):
            body = {"status": "true", "feeds": [
                {"id": 41504, "title": "Show", "language": "en-US", "trendScore": 9,
                 "categories": {"102": "Technology"}, "podcastGuid": "g-1"},
                {"id": None, "title": "Broken"},
            ], "count": 2}  # fmt: skip
        elif url.path.endswith("/episodes/byfeedid"):
            body = {"status": "true", "items": [
                {"id": 1, "title": "A", "datePublished": 1_763_000_000, "duration": 1800,
                 "feedLanguage": "en-US", "feedId": 41504},
                {"id": None, "title": "no id", "datePublished": 1_763_000_000},
            ], "count": 2}  # fmt: skip
        else:
            body = {"status": "true", "items": []}
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    FakeApi.statuses, FakeApi.requests = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/1.0"
    server.shutdown()


def client(base_url: str, **kw: object) -> PodcastIndexClient:
    return PodcastIndexClient(base_url=base_url, api_key=KEY, api_secret=SECRET, backoff_s=0.01, **kw)


def test_retries_429_then_succeeds(api: str) -> None:
    FakeApi.statuses = [429, 503]
    feeds = client(api).trending(max_feeds=5, lang="en")
    assert [f["id"] for f in feeds] == [41504, None]
    assert len(FakeApi.requests) == 3
    path, query, headers = FakeApi.requests[-1]
    assert path == "/api/1.0/podcasts/trending"
    assert query == {"max": ["5"], "lang": ["en"]}
    assert headers["X-Auth-Key"] == KEY
    assert len(headers["Authorization"]) == 40


def test_gives_up_with_a_clear_error_that_hides_secrets(api: str) -> None:
    FakeApi.statuses = [500] * 10
    with pytest.raises(PodcastIndexError, match="after 3 attempts: HTTP 500") as err:
        client(api, max_retries=2).trending()
    assert SECRET not in str(err.value) and KEY not in str(err.value)


def test_client_errors_are_not_retried(api: str) -> None:
    FakeApi.statuses = [401]
    with pytest.raises(PodcastIndexError, match="HTTP 401"):
        client(api).episodes_by_feed(1)
    assert len(FakeApi.requests) == 1


def test_snapshot_parses_feeds_and_episodes(api: str) -> None:
    rows, report = client(api).snapshot(date(2026, 11, 20))
    assert [(r["episode_id"], r["language"], r["source"]) for r in rows] == [("1", "en", "podcastindex")]
    assert report.skipped == {"feed without id": 1, "missing episode id": 1}
    (path, query, _) = FakeApi.requests[1]
    assert path.endswith("/episodes/byfeedid") and query["id"] == ["41504"]
