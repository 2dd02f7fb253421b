"""How the API answers when the serving store cannot: 503 with a reason, counted in the metrics."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pymongo.errors import PyMongoError

from api.store import NoActiveVersion
from api.telemetry import Telemetry


def add_store_error_handlers(app: FastAPI, telemetry: Telemetry) -> None:
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
