"""The routes that operate the API rather than serve listeners, and who may call each (and why):

- ``/health``: anyone, never limited — a liveness probe carries no token and must never be refused;
  it touches nothing;
- ``/ready``: anyone, limited per client address — a readiness probe carries no token; it pings
  MongoDB, so a flood of it is bounded;
- ``/metrics``: a service token — Prometheus sends one (``authorization`` in its scrape config), and
  the counts are the operator's business;
- ``/metrics/impressions``: a service token — this worker's impression counters as JSON;
- ``/docs``, ``/openapi.json``: anyone — the API's description holds no data, and it is where a
  developer learns how to get a token.
"""

# No `from __future__ import annotations`: FastAPI reads the route closures' Annotated parameters at runtime.
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.auth import Principal
from api.gate import Gate
from api.schemas import Health, Metrics, Problem, Ready
from api.store import ServingStore
from api.telemetry import Telemetry
from podrec.serving.impression_log import ImpressionLog

UNAVAILABLE = {503: {"model": Problem, "description": "MongoDB unreachable or nothing published yet."}}
REFUSED = {
    401: {"model": Problem, "description": "No token, or one that does not verify."},
    403: {"model": Problem, "description": "A token whose scope does not reach this."},
    429: {"model": Problem, "description": "Over the rate limit: see Retry-After."},
}


def operations_router(
    store: ServingStore, impressions: ImpressionLog, telemetry: Telemetry, gate: Gate, openapi_url: str
) -> APIRouter:
    router = APIRouter(tags=["operations"])
    Service = Annotated[Principal, Depends(gate.service)]

    @router.get("/health", response_model=Health)
    def health() -> Health:
        """Liveness: the process answers. It does not touch MongoDB."""
        return Health(status="ok")

    @router.get("/ready", response_model=Ready, responses={**UNAVAILABLE, 429: REFUSED[429]},
                dependencies=[Depends(gate.address)])  # fmt: skip
    def ready() -> Ready:
        """Readiness: MongoDB answers and a version is active."""
        store.ping()
        return Ready(status="ready", serving_version=store.active_version())

    if telemetry.metrics:

        @router.get("/metrics", response_class=Response, responses=REFUSED)
        async def metrics(_: Service) -> Response:
            """Prometheus metrics of every worker: request latency by route and status, cache lookups,
            store errors, impressions (logged, delivered, dropped, undelivered, waiting)."""
            return Response(telemetry.scrape(), media_type=CONTENT_TYPE_LATEST)

    @router.get("/metrics/impressions", response_model=Metrics, responses=REFUSED)
    def impression_counts(_: Service) -> Metrics:
        """Impressions of this worker: logged, delivered to Kafka, dropped (buffer full), undelivered
        (the broker never took them; by reason), still waiting, and what keeps the broker from taking
        them now (refused credentials). It does not touch MongoDB or Kafka."""
        return Metrics(
            impressions=impressions.metrics(),
            impressions_undelivered=impressions.undelivered(),
            impressions_problem=impressions.problem(),
        )

    @router.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title="podrec API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon.png",
        )

    return router
