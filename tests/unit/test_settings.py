from pathlib import Path

import pytest

from podrec.settings import (
    SettingsError,
    impressions_signing_key,
    load_settings,
    redact_uri,
    without_credentials,
)


def test_defaults_run_locally(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("PODREC_LAKE_URI", "PODREC_SPARK_MASTER", "PODREC_MONGO_URI", "PODREC_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings()
    assert s.spark.master == "local[*]"
    assert s.lake.root == str(tmp_path / "data" / "lakehouse")
    assert s.kafka.bootstrap == "127.0.0.1:9092"


def test_environment_overrides_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "podrec.toml"
    config.write_text('[spark]\nmaster = "spark://from-file:7077"\n[lake]\nuri = "s3a://bucket/lake"\n')
    monkeypatch.setenv("PODREC_CONFIG_FILE", str(config))
    monkeypatch.setenv("PODREC_SPARK_MASTER", "spark://from-env:7077")
    monkeypatch.setenv("PODREC_SPARK_CONF", '{"spark.executor.memory": "8g"}')
    s = load_settings()
    assert s.spark.master == "spark://from-env:7077"
    assert s.lake.root == "s3a://bucket/lake"  # object-store URIs are kept as given
    assert s.spark.conf == {"spark.executor.memory": "8g"}


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODREC_PODCASTINDEX_API_SECRET", "s3cr3t-value")
    monkeypatch.setenv("PODREC_MONGO_URI", "mongodb://alice:hunter2@db.example:27017/")
    s = load_settings()
    shown = repr(s) + str(s.public_view())
    assert "s3cr3t-value" not in shown
    assert "hunter2" not in shown
    assert s.public_view()["mongo"]["uri"] == "mongodb://***@db.example:27017/"
    assert s.podcastindex.api_secret is not None
    assert s.podcastindex.api_secret.get_secret_value() == "s3cr3t-value"


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


def test_one_knob_one_name_from_the_environment_to_the_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODREC_ALS_ALPHA", "1.5")
    monkeypatch.setenv("PODREC_ALS_WINDOW_DAYS", "14")
    monkeypatch.setenv("PODREC_HYBRID_COLD_START", "reserved")
    s = load_settings()
    assert (s.als.alpha, s.als.window_days, s.hybrid.cold_start) == (1.5, 14, "reserved")
    tuned = s.with_(als={"rank": 16})
    assert (tuned.als.rank, tuned.als.alpha, s.als.rank) == (16, 1.5, 32)  # a copy; the rest kept


def test_out_of_range_settings_name_their_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODREC_ALS_ALPHA", "-1")
    monkeypatch.setenv("PODREC_HYBRID_COLD_START", "sometimes")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "PODREC_ALS_ALPHA: Input should be greater than 0" in str(raised.value)
    assert "PODREC_HYBRID_COLD_START" in str(raised.value)


def test_a_secret_in_the_settings_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "podrec.toml"
    config.write_text('[mongo]\nuri = "mongodb://alice:hunter2@db:27017/"\n')
    monkeypatch.setenv("PODREC_CONFIG_FILE", str(config))
    with pytest.raises(SettingsError, match="PODREC_MONGO_URI in the environment") as raised:
        load_settings()
    assert "hunter2" not in str(raised.value)


def test_a_renamed_variable_says_its_new_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODREC_EXPERIMENT_ID", "exp-2")
    with pytest.raises(SettingsError, match="PODREC_EXPERIMENT_ID is now PODREC_AB_EXPERIMENT_ID"):
        load_settings()


def test_secrets_come_from_a_secrets_dir_with_the_environment_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "PODREC_MONGO_URI").write_text("mongodb://svc:from-file@db.example:27017/\n")
    (tmp_path / "PODREC_PODCASTINDEX_API_KEY").write_text("key-from-file")
    (tmp_path / "PODREC_LAKE_URI").write_text("/not/a/secret")  # only secrets are read from there
    monkeypatch.setenv("PODREC_SECRETS_DIR", str(tmp_path))
    for var in ("PODREC_MONGO_URI", "PODREC_PODCASTINDEX_API_KEY", "PODREC_LAKE_URI"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings()
    assert s.mongo.uri.get_secret_value() == "mongodb://svc:from-file@db.example:27017/"
    assert s.podcastindex.api_key.get_secret_value() == "key-from-file"
    assert s.lake.uri == "./data/lakehouse"
    monkeypatch.setenv("PODREC_PODCASTINDEX_API_KEY", "key-from-env")
    assert load_settings().podcastindex.api_key.get_secret_value() == "key-from-env"
    monkeypatch.setenv("PODREC_SECRETS_DIR", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="PODREC_SECRETS_DIR"):
        load_settings()


@pytest.mark.parametrize(
    ("uri", "address"),
    [
        ("mongodb://u:p@h:1/db", "mongodb://h:1/db"),
        ("mongodb://h:1/", "mongodb://h:1/"),
        (
            "mongodb+srv://u:p@c.example/?w=1&authSource=admin",
            "mongodb+srv://c.example/?w=1&authSource=admin",
        ),
        ("mongodb://h/?tls=true&tlsCertificateKeyFilePassword=zz", "mongodb://h/?tls=true"),
        (
            "mongodb://h/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:t",
            "mongodb://h/?authMechanism=MONGODB-AWS",
        ),
    ],
)
def test_without_credentials_keeps_the_address_only(uri: str, address: str) -> None:
    assert without_credentials(uri) == address


def test_cluster_profile_changes_defaults_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PODREC_PROFILE", "cluster")
    monkeypatch.setenv("PODREC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PODREC_SPARK_MASTER", "spark://from-env:7077")
    for var in ("PODREC_SECRETS_DIR", "PODREC_MONGO_URI", "PODREC_KAFKA_SASL_PASSWORD", "PODREC_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings()
    assert s.spark.master == "spark://from-env:7077"  # the environment still wins
    assert len(s.kafka.bootstrap.split(",")) == 3
    assert (s.kafka.security_protocol, s.kafka.sasl_mechanism) == ("SASL_PLAINTEXT", "SCRAM-SHA-512")
    # A user per client role, beside the brokers' own.
    assert [s.kafka.credential(role)[0] for role in (None, "producer", "api", "ingest")] == [
        "podrec", "podrec-producer", "podrec-api", "podrec-ingest",
    ]  # fmt: skip
    assert s.mongo.local_backend == "postgresql"
    assert load_settings(profile="local").mongo.local_backend == "sqlite"


def test_cluster_profile_mints_its_credentials_once_and_never_shows_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PODREC_DATA_DIR", str(tmp_path / "data"))
    for var in ("PODREC_SECRETS_DIR", "PODREC_MONGO_URI", "PODREC_KAFKA_SASL_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    first, again = load_settings(profile="cluster"), load_settings(profile="cluster")
    password = first.kafka.sasl_password
    assert password is not None and again.kafka.sasl_password == password
    assert first.mongo.uri == again.mongo.uri
    # Each role's password and the Spark cluster's secret too: all different, none shown.
    passwords = [first.kafka.credential(role)[1] for role in (None, "producer", "api", "ingest")]
    assert first.spark.auth_secret is not None and again.spark.auth_secret == first.spark.auth_secret
    shown = [*(p.get_secret_value() for p in passwords), first.spark.auth_secret.get_secret_value()]
    assert len(set(shown)) == 5 and not any(
        value in str(first.public_view()) + repr(first) for value in shown
    )
    minted = tmp_path / "data" / "secrets"
    assert minted.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in minted.iterdir()} == {0o600}
    assert password.get_secret_value() not in str(first.public_view())
    assert first.public_view()["mongo"]["uri"].startswith("mongodb://***@127.0.0.1:27018/")
    # An operator's own secret wins over the minted one.
    monkeypatch.setenv("PODREC_KAFKA_SASL_PASSWORD", "operator-set")
    own = load_settings(profile="cluster").kafka.sasl_password
    assert own is not None and own.get_secret_value() == "operator-set"


def test_unknown_profile_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODREC_PROFILE", "prod")
    with pytest.raises(SettingsError, match="PODREC_PROFILE"):
        load_settings()


def test_the_impressions_signing_key_is_minted_once_per_data_folder_unless_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for var in ("PODREC_SECRETS_DIR", "PODREC_IMPRESSIONS_SIGNING_KEY", "PODREC_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PODREC_DATA_DIR", str(tmp_path / "data"))
    local = load_settings()
    assert local.impressions.signing_key is None  # nothing minted by reading settings
    assert not (tmp_path / "data").exists()
    key = impressions_signing_key(local)
    assert len(key) >= 32 and impressions_signing_key(load_settings()) == key  # the API's is ingestion's
    minted = tmp_path / "data" / "secrets" / "PODREC_IMPRESSIONS_SIGNING_KEY"
    assert [p.name for p in minted.parent.iterdir()] == [minted.name]  # no draft left behind
    assert minted.stat().st_mode & 0o777 == 0o600
    other = load_settings(data={"dir": str(tmp_path / "elsewhere")})
    assert impressions_signing_key(other) != key
    # The cluster profile mints it with its other credentials, into the same file of its data folder.
    monkeypatch.setenv("PODREC_DATA_DIR", str(tmp_path / "cluster"))
    cluster = load_settings(profile="cluster")
    assert cluster.impressions.signing_key is not None
    assert impressions_signing_key(cluster) == impressions_signing_key(load_settings(profile="cluster"))
    assert cluster.impressions.signing_key.get_secret_value() not in str(cluster.public_view())
    # An operator's own key wins, and one too short is refused without being shown.
    monkeypatch.setenv("PODREC_IMPRESSIONS_SIGNING_KEY", "an-operator-key-of-at-least-32-chars")
    assert impressions_signing_key(load_settings()) == b"an-operator-key-of-at-least-32-chars"
    monkeypatch.setenv("PODREC_IMPRESSIONS_SIGNING_KEY", "short-key")
    with pytest.raises(SettingsError, match="at least 32 characters") as raised:
        load_settings()
    assert "short-key" not in str(raised.value)


def test_the_impressions_signing_key_is_refused_in_the_settings_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "podrec.toml"
    config.write_text(
        '[impressions]\nsigning_key = "a-key-in-a-file-that-anyone-may-read"\nmin_propensity = 0.01\n'
    )
    monkeypatch.setenv("PODREC_CONFIG_FILE", str(config))
    with pytest.raises(SettingsError, match="PODREC_IMPRESSIONS_SIGNING_KEY in the environment"):
        load_settings()
    config.write_text("[impressions]\nmin_propensity = 0.01\n")
    assert load_settings().impressions.min_propensity == 0.01
