"""What one caller may ask of a worker: requests per second, and the size of a request.

**Rates** are token buckets in the worker's memory (``TokenBuckets``): each key holds up to
``rate · PODREC_API_RATE_BURST_S`` requests and regains ``rate`` per second; a request finding its
bucket empty is refused with 429 and ``Retry-After`` (the seconds until one is back). Keys are a
listener token's subject (``PODREC_API_RATE_LISTENER_PER_S``), a service token's
(``_RATE_SERVICE_PER_S``) and the client address (``_RATE_ADDRESS_PER_S``), which every request
pays except a verified service's: a backend asks for many listeners from one address. Per worker:
with ``PODREC_API_WORKERS`` = N a caller spread over every worker may get up to N times a rate, so
rates are set per worker. The buckets are bounded (``MAX_KEYS``, least recently used out): an evicted
key comes back with a full bucket, which an idle caller would have had by then anyway.

**Sizes** are checked before anything else reads the request (``RequestSizeLimit``): a longer path
and query than ``PODREC_API_MAX_URL_BYTES`` is 414, larger headers than ``_MAX_HEADER_BYTES`` 431,
a body announced larger than ``_MAX_BODY_BYTES`` — or a chunked one, whose length nobody announced —
413. No route reads a body; the limit keeps it so if one ever does.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from podrec.settings import ApiSettings

# Keys each bucket set remembers (~150 bytes each): enough for every listener active in a few seconds.
MAX_KEYS = 100_000


class TokenBuckets:
    """One token bucket per key, ``rate`` per second up to ``capacity``. Used from the event loop only."""

    def __init__(
        self,
        rate: float,
        burst_s: float,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate * burst_s)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (tokens, at)

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """0 if ``key`` may make a request now (and it is counted), else the seconds until it may."""
        now = self._clock()
        tokens, at = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
        self._buckets[key] = (tokens - 1 if wait == 0 else tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


class RateLimits:
    """The three bucket sets of ``PODREC_API_RATE_*`` (a rate of 0 is no limit)."""

    def __init__(self, api: ApiSettings, clock: Callable[[], float] = time.monotonic) -> None:
        def buckets(rate: float) -> TokenBuckets | None:
            return TokenBuckets(rate, api.rate_burst_s, clock=clock) if rate > 0 else None

        self.listener = buckets(api.rate_listener_per_s)
        self.service = buckets(api.rate_service_per_s)
        self.address = buckets(api.rate_address_per_s)


def retry_after(wait_s: float) -> str:
    """``Retry-After`` in whole seconds, never 0 (a client told 0 retries at once)."""
    return str(max(1, math.ceil(wait_s)))


class RequestSizeLimit:
    """ASGI middleware: refuses an oversized request with a one-line JSON body before the app sees it."""

    def __init__(self, app: ASGIApp, max_url_bytes: int, max_header_bytes: int, max_body_bytes: int) -> None:
        self.app = app
        self.max_url_bytes = max_url_bytes
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.refusal(scope)
            if refusal is not None:
                status, detail = refusal
                await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        url = len(scope.get("raw_path") or scope["path"].encode()) + len(scope["query_string"])
        if url > self.max_url_bytes:
            return 414, f"the URL is longer than {self.max_url_bytes} bytes"
        size, length, chunked = 0, 0, False
        for name, value in scope["headers"]:
            size += len(name) + len(value)
            if name == b"content-length":
                length = int(value) if value.isdigit() else self.max_body_bytes + 1
            elif name == b"transfer-encoding":
                chunked = True
        if size > self.max_header_bytes:
            return 431, f"the request headers are larger than {self.max_header_bytes} bytes"
        if chunked or length > self.max_body_bytes:
            return (
                413,
                f"a request body is refused above {self.max_body_bytes} bytes or of unannounced length",
            )
        return None
