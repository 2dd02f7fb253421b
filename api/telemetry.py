"""What the API tells whoever runs it: Prometheus metrics, and one JSON access-log line per request.

**Metrics** (prometheus-client, scraped at ``/metrics``, see api.operations):

- ``podrec_api_request_duration_seconds{route, method, status}``: a histogram; ``route`` is the
  template (``/users/{user_id}/recommendations``), ``unmatched`` for a path no route has, so no id
  ever becomes a label value;
- ``podrec_api_cache_lookups_total{kind, result}``: ``hit``, ``negative_hit`` (an id known to be
  missing) or ``miss`` (read from MongoDB);
- ``podrec_api_store_errors_total{error}``: MongoDB unreachable, nothing published;
- ``podrec_api_impressions_total{outcome}``: ``logged``, ``delivered``, ``dropped``, ``undelivered``,
  and ``podrec_api_impressions_waiting``.

Every uvicorn worker counts: ``podrec serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a folder it empties
first, each worker writes its values there (prometheus-client's multi-process mode) and a scrape of
any worker sums them all. Without that variable (the API in process: tests, ``podrec loop``) the app
keeps its own registry. The impression counts belong to podrec.serving.impression_log, which knows
nothing of Prometheus: each worker copies their growth into the counters every ``TICK_S`` seconds,
and before it answers a scrape.

**Access log** (on stdout): one JSON object per line — ``time``, ``request_id`` (the client's
``X-Request-Id`` when it is an id, else one made here; sent back in the response's ``X-Request-Id``),
``method``, ``route`` (the template), ``status``, ``latency_ms``, ``subject`` (podrec.privacy.masked_id
of the token's ``sub``) and ``scope``. Never the path itself, the query, a listener id or a reason. Each
line is written as its request ends, straight to the stream — through ``logging`` a line cost about six
times as much (its record, its locks, its search for the caller's frame) — and the stream is flushed
every ``TICK_S`` seconds, or whenever its buffer fills, rather than once a line: a system call a
request is one more moment for a busy machine to take the core away. Point stdout at a file or a
collector that keeps up: a stalled reader stalls the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import Principal
from podrec.ids import is_id
from podrec.serving.impression_log import ImpressionLog

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"
# Methods a label may hold; any other (h11 parses any token as one) is "other", so labels stay bounded.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# From a cached answer (~0.5 ms) to a MongoDB timeout (PODREC_API_MONGO_TIMEOUT_MS, 1 s by default).
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CACHE_KINDS = ("recommendations", "episodes", "similar")
CACHE_RESULTS = ("hit", "negative_hit", "miss")
IMPRESSION_OUTCOMES = ("logged", "delivered", "dropped", "undelivered")
# How often a worker copies its impression counts into the metrics and flushes its access log.
TICK_S = 1.0


class Telemetry:
    """The metrics and the access log of one app (``metrics``/``access_log``: PODREC_API_METRICS,
    PODREC_API_ACCESS_LOG). ``start``/``stop`` run with the app's lifespan."""

    def __init__(self, metrics: bool, access_log: bool) -> None:
        self.metrics = metrics
        self.access_log = access_log
        self.multiprocess = metrics and MULTIPROC_VARIABLE in os.environ
        if self.multiprocess and prometheus_values.ValueClass is prometheus_values.MutexValue:
            raise RuntimeError(
                f"prometheus_client was imported before {MULTIPROC_VARIABLE} was set, so this worker would "
                "count alone: set it before the API is imported (`podrec serve` does)"
            )
        self.registry = CollectorRegistry(auto_describe=True)
        own = None if self.multiprocess else self.registry  # multi-process: values go to files, not here
        if self.multiprocess:
            MultiProcessCollector(self.registry)
        self._requests = Histogram(
            "podrec_api_request_duration_seconds", "Time from a request's arrival to its answer's end.",
            ("route", "method", "status"), buckets=LATENCY_BUCKETS, registry=own,
        )  # fmt: skip
        lookups = Counter(
            "podrec_api_cache_lookups", "Documents looked up in the worker's cache, by outcome.",
            ("kind", "result"), registry=own,
        )  # fmt: skip
        # Made up front: a worker's files exist from its start, and a lookup pays no label resolution.
        self._lookups = {(k, r): lookups.labels(k, r) for k in CACHE_KINDS for r in CACHE_RESULTS}
        self._store_errors = Counter(
            "podrec_api_store_errors",
            "Requests MongoDB could not answer, by error.",
            ("error",),
            registry=own,
        )
        impressions = Counter(
            "podrec_api_impressions", "Served lists for Kafka, by outcome (logged = the rest + waiting).",
            ("outcome",), registry=own,
        )  # fmt: skip
        self._impressions = {outcome: impressions.labels(outcome) for outcome in IMPRESSION_OUTCOMES}
        self._waiting = Gauge(
            "podrec_api_impressions_waiting", "Impressions queued for Kafka, not yet delivered or given up.",
            registry=own, multiprocess_mode="livesum",
        )  # fmt: skip
        self._copied = dict.fromkeys(IMPRESSION_OUTCOMES, 0)
        self._children: dict[tuple[str, str, int], Any] = {}
        self._templates: dict[Any, str] = {}
        self._stream: TextIO | None = None
        self._ticking: asyncio.Task[None] | None = None
        self._impression_log: ImpressionLog | None = None

    def name_routes(self, routes: Iterable[BaseRoute]) -> None:
        """Templates of the routes FastAPI does not name in the request (its own ``/openapi.json``, the
        mounted Swagger files), by the endpoint it hands the request to."""
        for route in routes:
            if isinstance(route, Mount):
                self._templates[route.app] = f"{route.path}/{{path}}"
            elif isinstance(route, Route):
                self._templates[route.endpoint] = route.path

    def start(self, impressions: ImpressionLog) -> None:
        """From the app's startup: the access log's stream, and the tick that copies impression counts and
        flushes the log."""
        if self.access_log:
            self._stream = sys.stdout  # looked up now, not at import: a harness may have swapped it
        if self.metrics:
            self._impression_log = impressions
        if self.metrics or self.access_log:
            self._ticking = asyncio.get_running_loop().create_task(self._tick_every(TICK_S))

    def stop(self) -> None:
        if self._ticking is not None:
            self._ticking.cancel()
        self._tick()
        self._stream = None
        if self.multiprocess:
            mark_process_dead(os.getpid())  # its "waiting" gauge no longer adds to the sum

    async def _tick_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            self._tick()

    def _tick(self) -> None:
        self.copy_impressions()
        if self._stream is not None:
            self._stream.flush()

    def copy_impressions(self) -> None:
        """The impression log's growth since the last copy, into the counters."""
        if self._impression_log is None:
            return
        counts = self._impression_log.metrics()
        for outcome in IMPRESSION_OUTCOMES:
            grown = counts[outcome] - self._copied[outcome]
            if grown > 0:
                self._impressions[outcome].inc(grown)
                self._copied[outcome] = counts[outcome]
        self._waiting.set(counts["waiting"])

    def scrape(self) -> bytes:
        """The Prometheus text of every worker (this one's impressions copied first)."""
        self.copy_impressions()
        return generate_latest(self.registry)

    def cache_lookup(self, kind: str, result: str) -> None:
        if self.metrics:
            self._lookups[kind, result].inc()

    def store_error(self, error: str) -> None:
        if self.metrics:
            self._store_errors.labels(error).inc()

    def observe(self, scope: Scope, status: int, seconds: float, request_id: str) -> None:
        """One finished request: its latency into the histogram, its line into the access log."""
        matched = scope.get("route")
        route = matched.path if matched else self._templates.get(scope.get("endpoint"), UNMATCHED)
        method = scope["method"] if scope["method"] in METHODS else "other"
        if self.metrics:
            key = (route, method, status)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self._requests.labels(route, method, str(status))
            child.observe(seconds)
        if self._stream is not None:
            principal: Principal | None = (scope.get("state") or {}).get("principal")
            line = {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"), "request_id": request_id,
                "method": method, "route": route, "status": status,
                "latency_ms": round(seconds * 1000, 3),
                "subject": principal.masked if principal else None,
                "scope": principal.scope if principal else None,
            }  # fmt: skip
            self._stream.write(json.dumps(line, separators=(",", ":")) + "\n")


def request_id_of(scope: Scope, made: Iterator[str]) -> str:
    """The client's ``X-Request-Id`` when it is an id (podrec.ids), else the next of ``made``."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given = value.decode("latin-1")
            if is_id(given):
                return given
            break
    return next(made)


class Observed:
    """ASGI middleware: times each request and hands it to ``Telemetry.observe``, whatever the answer
    (a refusal of api.limits or api.gate, an error) — the outermost layer of the app."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry
        # Request ids made here: a random prefix per worker and a counter, unique without a uuid4's
        # system call per request.
        prefix = secrets.token_hex(6)
        self._ids = (f"{prefix}-{n:x}" for n in itertools.count())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope, self._ids)
        echoed = (b"x-request-id", request_id.encode())
        status = 500  # what the server answers if the app raises before it starts a response

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), echoed]}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.telemetry.observe(scope, status, time.perf_counter() - started, request_id)


def prepare_multiprocess_dir(folder: os.PathLike[str] | str) -> None:
    """Empty ``folder`` of a previous run's metric files (a dead worker's counts would add to the new
    ones) and create it. `podrec serve` calls it before the workers start."""
    path = os.fspath(folder)
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(path, name))
