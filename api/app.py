"""The recommendation API: ``create_app(settings)`` → FastAPI; ``podrec serve`` runs it with uvicorn.

``create_app`` only assembles: what the routes share (``api.serving.Serving``: the store over MongoDB,
the gate, the telemetry, the impression log), the middleware, the store's error answers
(``api.errors``) and the route modules — the listener's list (``api.recommendations``), similar
episodes (``api.similar``) and the operations routes (``api.operations``).

The list routes answer on the event loop when the store's cache holds everything they need, and only
otherwise in a worker thread (``api.serving.memory_first``). Nobody is served without a bearer token
(api.gate, api.auth): a listener's reads their own list, a service's any; a refused request is
answered before the route runs, so it logs no impression. Rates and request sizes are bounded
(api.limits); every request is timed into Prometheus metrics and one JSON access-log line
(api.telemetry).
"""

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.errors import add_store_error_handlers
from api.limits import RequestSizeLimit
from api.operations import operations_router
from api.recommendations import recommendations_router
from api.serving import Serving, utc_now
from api.similar import similar_router
from api.telemetry import Observed
from podrec.settings import PodrecSettings, load_settings

# Swagger UI 5 (OpenAPI 3.1) as files in a wheel: the docs page works with no CDN in reach.
SWAGGER_FILES = Path(fastapi_offline.__file__).parent / "static"


def create_app(settings: PodrecSettings | None = None, clock: Callable[[], datetime] = utc_now) -> FastAPI:
    """The API over ``settings``; ``clock`` stamps impressions (a simulation serves its own days)."""
    serving = Serving.from_settings(settings or load_settings(), clock)
    api = serving.settings.api

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # What the worker loaded to start (~110k objects: FastAPI, pydantic, pymongo, and the pandas the
        # library imports) lives as long as it does; frozen, the collector stops re-scanning it, and its
        # full collections went from ~90 ms each to a third of that in the middle of requests.
        gc.collect()
        gc.freeze()
        serving.start()
        yield
        serving.close()

    app = FastAPI(
        title="podrec",
        version="1",
        summary="Which podcast episodes next: hybrid ALS + transcript-similarity lists, served from MongoDB.",
        lifespan=lifespan,
        docs_url=None,  # api.operations serves it from local files: FastAPI's loads Swagger UI from a CDN
        redoc_url=None,
    )
    # Added innermost first: the size limit runs before anything reads the request, and Observed
    # outside it times and logs every answer, its refusals included.
    app.add_middleware(
        RequestSizeLimit, max_url_bytes=api.max_url_bytes, max_header_bytes=api.max_header_bytes,
        max_body_bytes=api.max_body_bytes,
    )  # fmt: skip
    if api.metrics or api.access_log:
        app.add_middleware(Observed, telemetry=serving.telemetry)
    app.mount("/static/swagger", StaticFiles(directory=SWAGGER_FILES), name="swagger")
    app.state.impressions = serving.impressions
    openapi_url = app.openapi_url or "/openapi.json"
    app.include_router(
        operations_router(serving.store, serving.impressions, serving.telemetry, serving.gate, openapi_url)
    )
    serving.telemetry.name_routes(app.routes)
    add_store_error_handlers(app, serving.telemetry)
    app.include_router(recommendations_router(serving))
    app.include_router(similar_router(serving))
    return app
