"""No secret is ever a Dagster resource's config: resources read them from the settings when used."""

import json

import pytest

from podrec.settings import load_settings
from podrec_assets.definitions import build_definitions
from resources import PodcastIndexResource, build_resources

SECRETS = {
    "PODREC_MONGO_URI": "mongodb://podrec:hunter2-pw@db.example:27017/?authSource=admin",
    "PODREC_PODCASTINDEX_API_KEY": "KEY-abc123",
    "PODREC_PODCASTINDEX_API_SECRET": "SECRET-xyz789",
}


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def test_resource_config_holds_no_secret_and_the_secret_is_read_when_used(secret_env) -> None:
    resources = build_resources(load_settings())
    shown = json.dumps({name: r.model_dump() for name, r in resources.items()}, default=str)
    for secret in ("hunter2-pw", "KEY-abc123", "SECRET-xyz789"):
        assert secret not in shown
    mongo = resources["mongo"]
    assert (mongo.uri, mongo.credentials) == ("mongodb://db.example:27017/?authSource=admin", True)
    assert mongo.connection_uri() == SECRETS["PODREC_MONGO_URI"]
    source = resources["episode_source"]
    assert isinstance(source, PodcastIndexResource)
    client = source.client()
    assert (client.api_key, client.api_secret) == ("KEY-abc123", "SECRET-xyz789")


def test_the_definitions_dagster_loads_hold_no_secret(secret_env) -> None:
    repository = build_definitions(load_settings()).get_repository_def()
    snapshots = [job.get_job_snapshot() for job in repository.get_all_jobs()]
    shown = repr([s.config_schema_snapshot for s in snapshots])
    assert "mongodb://db.example:27017/" in shown  # the resources' config is in there, without secrets
    for secret in ("hunter2-pw", "KEY-abc123", "SECRET-xyz789"):
        assert secret not in shown


def test_credentials_set_only_in_code_are_refused_when_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODREC_MONGO_URI", raising=False)
    mongo = build_resources(load_settings(mongo={"uri": "mongodb://u:pw@db.example:1/"}))["mongo"]
    assert "pw" not in json.dumps(mongo.model_dump())
    with pytest.raises(RuntimeError, match=r"PODREC_MONGO_URI now points at mongodb://127\.0\.0\.1"):
        mongo.connection_uri()
