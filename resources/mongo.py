"""The MongoDB serving store: FerretDB locally, MongoDB or Atlas by ``PODREC_MONGO_URI``."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import PrivateAttr
from pymongo import MongoClient
from pymongo.database import Database


class MongoResource(ConfigurableResource):
    """One client per process, opened on first use; the URI may carry credentials."""

    uri: str
    database: str
    server_selection_timeout_ms: int = 5000

    _client: MongoClient | None = PrivateAttr(default=None)

    def client(self) -> MongoClient:
        if self._client is None:
            self._client = MongoClient(
                self.uri, serverSelectionTimeoutMS=self.server_selection_timeout_ms, tz_aware=True
            )
        return self._client

    def db(self) -> Database:
        return self.client()[self.database]

    def teardown_after_execution(self, context: object) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
