"""Rate and size limits on their own (api.limits): token buckets on a hand-moved clock, and which request
is refused with which status."""

import pytest

from api.limits import RateLimits, RequestSizeLimit, TokenBuckets, retry_after
from podrec.settings import ApiSettings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_lets_a_burst_through_then_its_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst_s=1.5, clock=clock)  # capacity 2 · 1.5 = 3
    assert [buckets.take("u1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("u1") == pytest.approx(0.5)  # empty: one token back in 1/2 s
    clock.now += 0.25  # half a token back: still 0.25 s to wait
    assert buckets.take("u1") == pytest.approx(0.25)
    clock.now += 0.25
    assert buckets.take("u1") == 0.0 and buckets.take("u1") == pytest.approx(0.5)
    assert buckets.take("u2") == 0.0  # keys are separate
    clock.now += 60  # refills to its capacity, not beyond
    assert [buckets.take("u1") == 0.0 for _ in range(4)] == [True, True, True, False]


def test_a_slow_rate_still_holds_one_request() -> None:
    buckets = TokenBuckets(rate=0.1, burst_s=2.0, clock=Clock())  # 0.2 tokens: rounded up to one request
    assert buckets.take("u1") == 0.0 and buckets.take("u1") == pytest.approx(10.0)
    assert retry_after(10.0) == "10" and retry_after(0.01) == "1"


def test_the_buckets_keep_to_their_size_and_a_forgotten_key_starts_full() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=1.0, burst_s=1.0, max_keys=2, clock=clock)
    assert buckets.take("a") == 0.0 and buckets.take("a") > 0
    buckets.take("b")
    buckets.take("c")  # a, the least recently used, is forgotten
    assert len(buckets) == 2 and buckets.take("a") == 0.0


def test_a_rate_of_zero_is_no_limit() -> None:
    limits = RateLimits(ApiSettings(rate_listener_per_s=0, rate_service_per_s=5, rate_address_per_s=0))
    assert limits.listener is None and limits.address is None
    assert limits.service is not None and limits.service.capacity == 10  # 5/s · the default 2 s burst


def scope(path: str = "/users/u1/recommendations", query: bytes = b"", headers: tuple = ()) -> dict:
    base = [(b"host", b"api"), (b"authorization", b"Bearer " + b"t" * 200)]
    return {"type": "http", "path": path, "raw_path": path.encode(), "query_string": query,
            "headers": [*base, *headers]}  # fmt: skip


@pytest.mark.parametrize(
    ("request_scope", "status"),
    [
        (scope(), None),
        (scope(query=b"locale=it-IT&k=5"), None),
        (scope(query=b"x=" + b"a" * 2_100), 414),
        (scope(path="/users/" + "u" * 2_100 + "/recommendations"), 414),
        (scope(headers=((b"cookie", b"c" * 9_000),)), 431),
        (scope(headers=tuple((f"x-{i}".encode(), b"v" * 100) for i in range(90))), 431),
        (scope(headers=((b"content-length", b"0"),)), None),
        (scope(headers=((b"content-length", b"1024"),)), None),
        (scope(headers=((b"content-length", b"1025"),)), 413),
        (scope(headers=((b"content-length", b"-1"),)), 413),
        (scope(headers=((b"transfer-encoding", b"chunked"),)), 413),
    ],
)
def test_an_oversized_request_is_refused_with_the_status_that_names_its_part(request_scope, status) -> None:
    limit = RequestSizeLimit(app=None, max_url_bytes=2_048, max_header_bytes=8_192, max_body_bytes=1_024)
    refusal = limit.refusal(request_scope)
    assert (refusal[0] if refusal else None) == status
