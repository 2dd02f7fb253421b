"""The MongoDB serving store: FerretDB locally, MongoDB or Atlas by ``PODREC_MONGO_URI``."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr
from pymongo import MongoClient
from pymongo.database import Database

from podrec.settings import load_settings, redact_uri, without_credentials


class MongoResource(ConfigurableResource):
    """One client per process, opened on first use.

    The config holds the address only: with ``credentials`` set, the full URI is read from the
    settings (the environment or ``PODREC_SECRETS_DIR``) when the client opens, so no secret is ever
    part of the resource's config, its Dagster UI page or a run's config."""

    uri: str = Field(description="The server's address, without credentials.")
    database: str
    credentials: bool = Field(
        False, description="The URI carries credentials: read PODREC_MONGO_URI when connecting."
    )
    server_selection_timeout_ms: int = 5000

    _client: MongoClient | None = PrivateAttr(default=None)

    def connection_uri(self) -> str:
        if not self.credentials:
            return self.uri
        secret = load_settings().mongo.uri.get_secret_value()
        if without_credentials(secret) != self.uri:
            raise RuntimeError(
                f"PODREC_MONGO_URI now points at {redact_uri(secret)}, not {self.uri} as when the code "
                "location was loaded: reload it"
            )
        return secret

    def client(self) -> MongoClient:
        if self._client is None:
            self._client = MongoClient(
                self.connection_uri(),
                serverSelectionTimeoutMS=self.server_selection_timeout_ms,
                tz_aware=True,
            )
        return self._client

    def db(self) -> Database:
        return self.client()[self.database]

    def teardown_after_execution(self, context: object) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
