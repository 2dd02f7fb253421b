"""A running dagster-webserver, asked through its GraphQL API for the resources' config, shows no secret:
the MongoDB password and the PodcastIndex key and secret never become resource config."""

import json
import shutil
import sys
from pathlib import Path

import pytest
import requests

from podrec_app.localinfra import free_port, running
from tests.conftest import settings_env

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]

RESOURCES = """
query Resources($selector: RepositorySelector!) {
  allTopLevelResourceDetailsOrError(repositorySelector: $selector) {
    __typename
    ... on ResourceDetailsList {
      results {
        name
        configuredValues { key value type }
        configFields { name defaultValueAsJson }
      }
    }
    ... on PythonError { message }
  }
}
"""
JOB_CONFIG = """
query Job($selector: PipelineSelector!) {
  pipelineOrError(params: $selector) {
    __typename
    ... on Pipeline { modes { resources { name configField { configType { recursiveConfigTypes {
      ... on CompositeConfigType { fields { name defaultValueAsJson } } } } } } } }
  }
}
"""


def graphql(base: str, query: str, **variables: object) -> dict:
    return requests.post(f"{base}/graphql", json={"query": query, "variables": variables}, timeout=120).json()


def test_the_webserver_shows_no_secret_in_resource_config(settings, tmp_path: Path) -> None:
    password, key, secret = "pw-Zq81xK", "PIKEY9931", "PISECRET7720"
    mongo = settings.mongo.uri.get_secret_value().replace("mongodb://", f"mongodb://podrec:{password}@")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "infra" / "dagster.yaml", home / "dagster.yaml")
    env = settings_env(settings) | {
        "DAGSTER_HOME": str(home),
        "PODREC_MONGO_URI": mongo,
        "PODREC_PODCASTINDEX_API_KEY": key,
        "PODREC_PODCASTINDEX_API_SECRET": secret,
    }
    port = free_port()
    webserver = [str(Path(sys.executable).with_name("dagster-webserver")), "-w", str(REPO / "workspace.yaml"),
                 "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with running(webserver, f"{base}/server_info", env=env, timeout_s=300):
        selector = {"repositoryLocationName": "podrec", "repositoryName": "__repository__"}
        answer = graphql(base, RESOURCES, selector=selector)
        job = graphql(base, JOB_CONFIG, selector=selector | {"pipelineName": "daily"})
    details = answer["data"]["allTopLevelResourceDetailsOrError"]
    assert details["__typename"] == "ResourceDetailsList", details
    by_name = {r["name"]: {v["key"]: v["value"] for v in r["configuredValues"]} for r in details["results"]}
    print(json.dumps(by_name, indent=1))
    # The resources are there, configured, and the live PodcastIndex source was chosen by the key.
    assert json.loads(by_name["mongo"]["uri"]) == settings.mongo.uri.get_secret_value()
    assert json.loads(by_name["mongo"]["credentials"]) is True
    assert "base_url" in by_name["episode_source"]
    assert job["data"]["pipelineOrError"]["__typename"] == "Pipeline", job
    shown = json.dumps(answer) + json.dumps(job)  # every field of both answers, defaults included
    for value in (password, key, secret):
        assert value not in shown
