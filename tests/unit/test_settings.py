from pathlib import Path

import pytest

from podrec.settings import load_settings, redact_uri


def test_defaults_run_locally(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("PODREC_LAKE_URI", "PODREC_SPARK_MASTER", "PODREC_MONGO_URI", "PODREC_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings()
    assert s.spark_master == "local[*]"
    assert s.lake_root == str(tmp_path / "data" / "lakehouse")
    assert s.kafka_bootstrap == "127.0.0.1:9092"


def test_environment_overrides_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "podrec.toml"
    config.write_text('spark_master = "spark://from-file:7077"\nlake_uri = "s3a://bucket/lake"\n')
    monkeypatch.setenv("PODREC_CONFIG_FILE", str(config))
    monkeypatch.setenv("PODREC_SPARK_MASTER", "spark://from-env:7077")
    monkeypatch.setenv("PODREC_SPARK_CONF", '{"spark.executor.memory": "8g"}')
    s = load_settings()
    assert s.spark_master == "spark://from-env:7077"
    assert s.lake_root == "s3a://bucket/lake"  # object-store URIs are kept as given
    assert s.spark_conf == {"spark.executor.memory": "8g"}


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODREC_PODCASTINDEX_API_SECRET", "s3cr3t-value")
    monkeypatch.setenv("PODREC_MONGO_URI", "mongodb://alice:hunter2@db.example:27017/")
    s = load_settings()
    shown = repr(s) + str(s.public_view())
    assert "s3cr3t-value" not in shown
    assert "hunter2" not in shown
    assert s.public_view()["mongo_uri"] == "mongodb://***@db.example:27017/"
    assert s.podcastindex_api_secret is not None
    assert s.podcastindex_api_secret.get_secret_value() == "s3cr3t-value"


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("mongodb://u:p@h:1/db", "mongodb://***@h:1/db"),
        ("mongodb://h:1/", "mongodb://h:1/"),
        ("mongodb+srv://u:p@cluster.example/?w=1", "mongodb+srv://***@cluster.example/?w=1"),
    ],
)
def test_redact_uri(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown
