"""The cluster profile's serving store: FerretDB on a real PostgreSQL, which checks every login."""

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from podrec.serving.publish import active_version, publish
from podrec.settings import PodrecSettings
from podrec_app import localinfra
from resources import build_resources
from tests.conftest import make_settings
from tests.integration.test_publish import episodes, lists, similar

pytestmark = pytest.mark.integration


@pytest.fixture
def postgres_backed() -> Iterator[tuple[PodrecSettings, str]]:
    # PostgreSQL runs as the postgres user, who cannot enter pytest's owner-only temporary folders.
    root = Path(tempfile.mkdtemp(prefix="podrec-pg-", dir="/tmp"))
    root.chmod(0o755)
    # A percent-encoded '@' in the password: the server must be given the decoded one.
    uri = (
        f"mongodb://podrec:p%40ss-{uuid.uuid4().hex}@127.0.0.1:{localinfra.free_port()}/?authMechanism=PLAIN"
    )
    settings = make_settings(root).with_(
        mongo={"uri": uri, "local_backend": "postgresql"}, postgres={"port": localinfra.free_port()}
    )
    try:
        yield settings, uri
    finally:
        localinfra.down(settings)
        shutil.rmtree(root)


def test_ferretdb_on_postgresql_serves_only_the_right_login_and_keeps_data_over_a_restart(
    postgres_backed: tuple[PodrecSettings, str],
) -> None:
    settings, uri = postgres_backed
    started = localinfra.up(settings, only=["postgres", "ferretdb"])
    assert [(s.name, s.healthy) for s in started] == [("postgres", True), ("ferretdb", True)]

    with MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
        client.podrec.lists.insert_one({"_id": "u1", "episodes": ["e1", "e2"]})

    wrong = uri.replace("p%40ss-", "not-it-")
    anonymous = f"mongodb://{uri.split('@')[1].split('/')[0]}/"
    for refused in (wrong, anonymous):
        with MongoClient(refused, serverSelectionTimeoutMS=5000) as client, pytest.raises(OperationFailure):
            client.podrec.lists.find_one({"_id": "u1"})

    # Stopped and started again: the cluster is initialised once, the login and the lists survive.
    assert localinfra.down(settings) == ["postgres", "ferretdb"]
    localinfra.up(settings, only=["postgres", "ferretdb"])
    with MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
        assert client.podrec.lists.find_one({"_id": "u1"}) == {"_id": "u1", "episodes": ["e1", "e2"]}


def test_a_version_publishes_through_the_gate_on_postgresql(
    postgres_backed: tuple[PodrecSettings, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The publish gate counts what the store holds; PostgreSQL's statistics lag a bulk load, and
    they once failed every version here ("stored_as_staged") though every document was stored."""
    settings, uri = postgres_backed
    localinfra.up(settings, only=["postgres", "ferretdb"])
    monkeypatch.setenv("PODREC_MONGO_URI", uri)  # the resource reads the credentials when it connects
    db = build_resources(settings)["mongo"].db()
    result = publish(
        db, "2026-11-20", lists(500, "m1"), similar(), episodes(), k=10, version="v20261120T000000Z-1"
    )
    assert result["passed"], result
    assert active_version(db) == "v20261120T000000Z-1"
