"""The recommendation API: ``create_app(settings)`` → FastAPI; ``podrec serve`` runs it with uvicorn.

Every list says which A/B arm, bucket, experiment and model produced it. The arm is assigned here
with the batch side's own function (podrec.recsys.ab), so a listener's list and its label cannot disagree:
a stored list made for another arm or experiment is not served (the popular list is, with a note).

The list routes answer on the event loop when the store's cache holds everything they need, and
only otherwise in a worker thread, where waiting for MongoDB blocks nobody (``memory_first``): a
thread hop costs more than the whole answer from memory.

Every list served is an impression: its id is in the answer (events that follow it may carry it), and
it is queued for Kafka (podrec.serving.impression_log) without waiting for the broker, signed with the
key ingestion checks, through a producer with every Kafka client's security settings; what a full
buffer drops, and what the broker never took and why, is counted (``/metrics``, and this worker's at
``/metrics/impressions``). With exploration on (``PODREC_EXPLORATION_SHARE``), a share of lists
carries new episodes in its last places, and every item its propensity (podrec.serving.exploration).

Nobody is served without a bearer token (api.gate, api.auth): a listener's reads their own list, a
service's any; a refused request is answered before the route runs, so it logs no impression. Rates
and request sizes are bounded (api.limits); every request is timed into Prometheus metrics and one
JSON access-log line (api.telemetry); the operations routes, and who may call them, are in
api.operations.
"""

# No `from __future__ import annotations`: FastAPI reads the Annotated parameters of the route
# closures at runtime, and their bounds come from settings.
import gc
import random
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path as FilePath
from typing import Annotated, Any, TypeVar

import fastapi_offline
from confluent_kafka import Producer
from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pymongo import MongoClient
from pymongo.errors import PyMongoError
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, Verifier
from api.gate import Gate, forbidden
from api.limits import RateLimits, RequestSizeLimit
from api.lists import LOCALE_PATTERN, localise, request_language
from api.operations import REFUSED, UNAVAILABLE, operations_router
from api.schemas import Problem, RecommendationList, SimilarList
from api.store import NoActiveVersion, NotInMemory, ServingStore
from api.telemetry import Observed, Telemetry
from podrec.ids import API_ID_PATTERN as ID_PATTERN
from podrec.ingest.impressions import Impression
from podrec.ingest.kafka_security import client_config
from podrec.recsys.ab import assign
from podrec.serving.exploration import explore
from podrec.serving.impression_log import ImpressionLog
from podrec.settings import PodrecSettings, impressions_signing_key, load_settings

# Swagger UI 5 (OpenAPI 3.1) as files in a wheel: the docs page works with no CDN in reach.
SWAGGER_FILES = FilePath(fastapi_offline.__file__).parent / "static"
# Listener and episode ids follow podrec's one id rule (ID_PATTERN): anything else — notably a JSON object
# such as {"$gt": ""} — is refused before it can reach a MongoDB query.

Answer = TypeVar("Answer")
# Impression ids from a client's request id: a retried request is the same impression (ingestion keeps one).
REQUEST_NAMESPACE = uuid.UUID("6f1d5f7e-2c1a-4c36-9a57-0d6b3f0f2a11")


async def memory_first(answer: Callable[[bool], Answer]) -> Answer:
    """``answer(memory_only=True)`` on the event loop; if it needs MongoDB, ``answer(False)`` in a thread."""
    try:
        return answer(True)
    except NotInMemory:
        return await run_in_threadpool(answer, False)


def utc_now() -> datetime:
    return datetime.now(UTC)


def without_private(answer: RecommendationList) -> RecommendationList:
    """The list as a caller who is neither its listener nor a service sees it (only with authentication
    off): no reasons (each quotes an episode the listener heard), nothing that tells whether the
    listener has a list of their own (``known``, ``source``, ``note``)."""
    items = [item.model_copy(update={"reason": None}) for item in answer.items]
    return answer.model_copy(update={"items": items, "known": None, "source": None, "note": None})


def create_app(settings: PodrecSettings | None = None, clock: Callable[[], datetime] = utc_now) -> FastAPI:
    """The API over ``settings``; ``clock`` stamps impressions (a simulation serves its own days)."""
    settings = settings or load_settings()
    telemetry = Telemetry(metrics=settings.api.metrics, access_log=settings.api.access_log)
    gate = Gate(Verifier.from_settings(settings), RateLimits(settings.api))
    timeout = settings.api.mongo_timeout_ms
    client: MongoClient = MongoClient(
        settings.mongo.uri.get_secret_value(),
        serverSelectionTimeoutMS=timeout,
        connectTimeoutMS=timeout,
        socketTimeoutMS=5 * timeout,
        tz_aware=True,
    )
    store = ServingStore(
        client[settings.mongo.database],
        settings.api.version_cache_s,
        cache_bytes=settings.api.cache_mb * 2**20,
        miss_bytes=settings.api.miss_cache_mb * 2**20,
        observe=telemetry.cache_lookup,
    )
    ab = settings.ab
    exploration = settings.exploration
    fallback_language = settings.hybrid.fallback_language
    max_k = settings.hybrid.k
    kafka = client_config(settings.kafka, role="api")  # the address, security settings and the API's own user
    impressions = ImpressionLog(
        lambda config: Producer({**kafka, **config}),
        settings.kafka.impressions_topic,
        settings.api.impressions_buffer,
        impressions_signing_key(settings),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # What the worker loaded to start (~110k objects: FastAPI, pydantic, pymongo, and the pandas the
        # library imports) lives as long as it does; frozen, the collector stops re-scanning it, and its
        # full collections went from ~90 ms each to a third of that in the middle of requests.
        gc.collect()
        gc.freeze()
        telemetry.start(impressions)
        yield
        impressions.close()
        telemetry.stop()
        client.close()

    app = FastAPI(
        title="podrec",
        version="1",
        summary="Which podcast episodes next: hybrid ALS + transcript-similarity lists, served from MongoDB.",
        lifespan=lifespan,
        docs_url=None,  # api.operations serves it from local files: FastAPI's loads Swagger UI from a CDN
        redoc_url=None,
    )
    api = settings.api
    # Added innermost first: the size limit runs before anything reads the request, and Observed
    # outside it times and logs every answer, its refusals included.
    app.add_middleware(
        RequestSizeLimit,
        max_url_bytes=api.max_url_bytes,
        max_header_bytes=api.max_header_bytes,
        max_body_bytes=api.max_body_bytes,
    )
    if api.metrics or api.access_log:
        app.add_middleware(Observed, telemetry=telemetry)
    app.mount("/static/swagger", StaticFiles(directory=SWAGGER_FILES), name="swagger")
    app.state.impressions = impressions
    openapi_url = app.openapi_url or "/openapi.json"
    app.include_router(operations_router(store, impressions, telemetry, gate, openapi_url))
    telemetry.name_routes(app.routes)
    Caller = Annotated[Principal, Depends(gate.caller)]

    @app.exception_handler(PyMongoError)
    async def mongo_unreachable(request: Request, exc: PyMongoError) -> JSONResponse:
        # The client reconnects on its own; the next request after MongoDB is back succeeds.
        telemetry.store_error(type(exc).__name__)
        return JSONResponse(
            status_code=503,
            content={"detail": "the serving store (MongoDB) is unreachable; retry shortly",
                     "error": type(exc).__name__},
            headers={"Retry-After": "1"},
        )  # fmt: skip

    @app.exception_handler(NoActiveVersion)
    async def nothing_published(request: Request, exc: NoActiveVersion) -> JSONResponse:
        telemetry.store_error("NoActiveVersion")
        return JSONResponse(status_code=503, content={"detail": str(exc), "error": "NoActiveVersion"})

    @app.get(
        "/users/{user_id}/recommendations",
        response_model=RecommendationList,
        responses={**REFUSED, **UNAVAILABLE},
        tags=["recommendations"],
    )
    async def recommendations(
        caller: Caller,
        user_id: Annotated[str, Path(pattern=ID_PATTERN, description="Listener id.")],
        locale: Annotated[
            str | None,
            Query(pattern=LOCALE_PATTERN, description="e.g. it-IT; default: the listener's own locale."),
        ] = None,
        k: Annotated[int, Query(ge=1, le=max_k, description="List length.")] = max_k,
        x_request_id: Annotated[
            str | None,
            Header(pattern=ID_PATTERN, description="A retried request with this id is the same impression."),
        ] = None,
    ) -> RecommendationList:
        """The listener's next episodes, one language variant per episode, in their A/B arm.

        A listener's token reads their own list only (403 otherwise); a service's reads any. A listener
        without a list of their own gets the popular list of their locale's language. The answer's
        ``impression_id`` identifies this list; events that follow it may carry it."""
        if not caller.may_read_list_of(user_id):
            raise forbidden("a listener's token reads only that listener's own list")
        impression_id = str(
            uuid.uuid5(REQUEST_NAMESPACE, f"{user_id}/{x_request_id}") if x_request_id else uuid.uuid4()
        )
        answer = await memory_first(
            lambda memory_only: user_recommendations(user_id, locale, k, impression_id, memory_only)
        )
        return answer if caller.sees_private(user_id) else without_private(answer)

    def user_recommendations(
        user_id: str, locale: str | None, k: int, impression_id: str, memory_only: bool
    ) -> RecommendationList:
        served_at = clock()
        version = store.active_version(memory_only)
        bucket, policy = assign(user_id, ab)
        doc, note = store.user_list(version, user_id, memory_only), None
        known = doc is not None
        language = request_language(locale or (doc or {}).get("locale"), fallback_language)
        if doc is not None and (doc.get("policy"), doc.get("experiment_id")) != (policy, ab.experiment_id):
            note = (
                f"the stored list is for {doc.get('policy')}/{doc.get('experiment_id')}, not this listener's "
                f"arm {policy}/{ab.experiment_id}: serving the popular list until the next publish"
            )
            doc = None
        source = "personal" if doc is not None else "popular"
        if doc is None:
            doc = store.popular_list(version, [language, fallback_language], memory_only)
            if doc is None:
                raise HTTPException(404, detail=f"version {version} holds no popular list")
        items = localise(doc["items"], language, fallback_language, k)
        if exploration.share > 0:
            since = served_at - timedelta(days=ab.new_episode_days)
            pool = [e for e in store.new_episodes(version, since, memory_only) if e["language"] == language]
            items = explore(items, pool, exploration.share, exploration.slots, random.Random(impression_id))
        answer = RecommendationList(
            user_id=user_id, known=known, source=source, policy=policy, bucket=bucket,
            experiment_id=ab.experiment_id, model_version=doc.get("model_version"),
            serving_version=version, rec_date=doc["rec_date"], language=language, items=items, note=note,
            impression_id=impression_id,
        )  # fmt: skip
        impressions.log(impression_of(answer, locale, served_at))
        return answer

    def impression_of(answer: RecommendationList, locale: str | None, served_at: datetime) -> Impression:
        served: list[dict[str, Any]] = [
            {"episode_id": i.episode_id, "rank": i.rank, "propensity": i.propensity, "explored": i.explored}
            for i in answer.items
        ]
        return Impression(
            user_id=answer.user_id, served_version=answer.serving_version, experiment_id=answer.experiment_id,
            bucket=answer.bucket, policy=answer.policy, source=answer.source, locale=locale,
            model_version=answer.model_version, served_at=served_at, items=served,
            impression_id=answer.impression_id,
        )  # fmt: skip

    @app.get(
        "/episodes/{episode_id}/similar",
        response_model=SimilarList,
        responses={404: {"model": Problem}, **REFUSED, **UNAVAILABLE},
        tags=["episodes"],
    )
    async def similar(
        _: Caller,
        episode_id: Annotated[str, Path(pattern=ID_PATTERN, description="Episode id (any variant).")],
        locale: Annotated[
            str | None, Query(pattern=LOCALE_PATTERN, description="Default: the episode's language.")
        ] = None,
        k: Annotated[int, Query(ge=1, le=max_k)] = max_k,
    ) -> SimilarList:
        """Episodes about the same things, by transcript similarity; never another variant of this one."""
        return await memory_first(lambda memory_only: similar_episodes(episode_id, locale, k, memory_only))

    def similar_episodes(episode_id: str, locale: str | None, k: int, memory_only: bool) -> SimilarList:
        version = store.active_version(memory_only)
        episode = store.episode(version, episode_id, memory_only)
        if episode is None:
            raise HTTPException(404, detail=f"no episode {episode_id} in serving version {version}")
        doc = store.similar(version, episode_id, memory_only) or {"items": []}
        language = request_language(locale or episode.get("language"), fallback_language)
        items = localise(doc["items"], language, fallback_language, k,
                         exclude_canonical=episode["canonical_episode_id"])  # fmt: skip
        return SimilarList(episode_id=episode_id, serving_version=version, language=language, items=items)

    return app
