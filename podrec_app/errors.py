"""One line for any failure of a ``podrec`` command: what failed, and what to do about it.

Errors podrec raises on purpose already say both (settings, an unreadable log, Kafka not answering,
nothing to evaluate); errors from the systems underneath (MongoDB, Kafka, a full disk, Spark) are
recognised here and named; anything else is reported by type and first line, with the hint that
``--debug`` shows the traceback. Secrets never appear: MongoDB is named by its redacted address.
"""

from __future__ import annotations

import errno

DEBUG_HINT = "run it again with `podrec --debug …` for the traceback"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _first_line(text: str, limit: int = 240) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line[:limit] + ("…" if len(line) > limit else "")


def _mongo_address() -> str:
    from podrec.settings import SettingsError, load_settings, redact_uri

    try:
        return redact_uri(load_settings().mongo.uri.get_secret_value())
    except SettingsError:
        return "PODREC_MONGO_URI"


def _disk_full(chain: list[BaseException]) -> bool:
    return any(
        (isinstance(e, OSError) and e.errno == errno.ENOSPC) or "No space left on device" in str(e)
        for e in chain
    )


def explain(exc: BaseException, command: str) -> str:
    """``<command> failed: <what>: <what to do>`` in one line."""
    from confluent_kafka import KafkaException
    from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

    from podrec.ingest.kafka_to_bronze import ReplayRefused
    from podrec.ingest.producer import BrokerUnreachable
    from podrec.lake.commit_lock import CommitLockError
    from podrec.privacy import ForgetError
    from podrec.settings import SettingsError

    chain = _chain(exc)
    if isinstance(exc, BrokerUnreachable | SettingsError | ReplayRefused | ForgetError | CommitLockError):
        what = str(exc)
    elif isinstance(exc, ConnectionFailure):
        what = (
            f"the serving store (MongoDB at {_mongo_address()}) is unreachable: start it with "
            "`podrec infra up` or point PODREC_MONGO_URI at a running server"
        )
    elif isinstance(exc, OperationFailure) and exc.code == 18:
        what = "MongoDB refused the credentials: check the user and password in PODREC_MONGO_URI"
    elif isinstance(exc, PyMongoError):
        what = f"MongoDB answered {type(exc).__name__}: {_first_line(str(exc))}; {DEBUG_HINT}"
    elif _disk_full(chain):
        what = (
            "the disk is full (No space left on device): the write was not committed and every table keeps "
            "its last version; free space, or point PODREC_LAKE_URI / PODREC_DATA_DIR at a larger disk"
        )
    elif isinstance(exc, KafkaException):
        error = exc.args[0] if exc.args else exc
        detail = error.str() if hasattr(error, "str") else str(error)
        what = (
            f"Kafka: {_first_line(detail)}: check the broker with `podrec infra status` and "
            "PODREC_KAFKA_BOOTSTRAP, then run it again"
        )
    else:
        message = _first_line(_java_message(exc) or str(exc)) or "no message"
        what = f"{type(exc).__name__}: {message}; {DEBUG_HINT}"
    return f"{command} failed: {what}"


def _java_message(exc: BaseException) -> str | None:
    """A Spark (py4j) error's own first line, e.g. ``java.io.IOException: …``, not py4j's preamble."""
    java = getattr(exc, "java_exception", None)
    return None if java is None else str(java.toString())
