"""Which local services a deployment's settings call for, decided without starting any."""

import subprocess
from pathlib import Path

import pytest

from podrec.settings import load_settings
from podrec_app import localinfra


def names(**overrides: object) -> list[str]:
    return [s.name for s in localinfra.services(load_settings(**overrides))]


def test_the_local_profile_starts_kafka_and_ferretdb_only(tmp_path: Path) -> None:
    assert names(data={"dir": str(tmp_path)}) == ["kafka", "ferretdb"]


def test_the_cluster_profile_starts_every_part_as_a_distributed_engine(tmp_path: Path) -> None:
    assert names(profile="cluster", data={"dir": str(tmp_path)}) == [
        "spark-master", "spark-worker-1", "spark-worker-2",
        "kafka-1", "kafka-2", "kafka-3",
        "seaweedfs", "postgres", "ferretdb", "dagster-daemon",
    ]  # fmt: skip


def test_remote_parts_are_left_alone(tmp_path: Path) -> None:
    assert (
        names(
            profile="cluster",
            data={"dir": str(tmp_path)},
            spark={"master": "spark://spark.example:7077"},
            kafka={"bootstrap": "b1.example:9092,b2.example:9092,b3.example:9092"},
            lake={"uri": "s3a://bucket/lake", "s3_endpoint": None},  # AWS itself
            mongo={"uri": "mongodb://u:p@db.example:27017/", "local_backend": "sqlite"},
        )
        == []
    )


def test_the_cluster_environment_carries_the_instance_and_the_key_pair_without_printing(
    tmp_path: Path, monkeypatch
) -> None:
    for name in ("DAGSTER_HOME", "PODREC_DAGSTER_POSTGRES_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(profile="cluster", data={"dir": str(tmp_path)})
    env = localinfra.cluster_environment(settings)
    assert env["DAGSTER_HOME"] == str(tmp_path / "dagster_home")
    assert env["PODREC_DAGSTER_POSTGRES_URL"].startswith("postgresql+psycopg2://podrec:")
    assert env["PODREC_DAGSTER_POSTGRES_URL"].endswith("@127.0.0.1:55432/dagster")
    assert env["AWS_SECRET_ACCESS_KEY"] == (tmp_path / "secrets" / "AWS_SECRET_ACCESS_KEY").read_text()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "operator's")  # an operator's own value wins
    assert localinfra.cluster_environment(settings)["AWS_SECRET_ACCESS_KEY"] == "operator's"
    assert localinfra.cluster_environment(load_settings(data={"dir": str(tmp_path)})) == {}


def test_the_object_store_claims_every_port_it_listens_on(tmp_path: Path) -> None:
    """SeaweedFS derives gRPC ports (+ 10000) and opens catalogs on fixed ports unless told
    otherwise; every port is on its command line and checked before it starts."""
    settings = load_settings(
        profile="cluster", data={"dir": str(tmp_path)}, cache={"dir": str(tmp_path / "cache")}
    )
    (store,) = localinfra.object_store_service(settings)
    assert store.port == 18333
    assert sorted(store.extra_ports) == [18080, 18888, 19333, 28080, 28333, 28888, 29333]
    (settings.cache.path / "bin").mkdir(parents=True)
    (settings.cache.path / "bin" / "weed").touch()
    command = store.command()
    assert {
        "-s3.port.grpc=28333",
        "-master.port.grpc=29333",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    } <= set(command)


def test_a_derived_port_above_65535_is_refused_with_the_setting_to_change(tmp_path: Path) -> None:
    settings = load_settings(
        profile="cluster", data={"dir": str(tmp_path)}, lake={"s3_endpoint": "http://127.0.0.1:56965"}
    )
    (store,) = localinfra.object_store_service(settings)
    with pytest.raises(
        localinfra.InfraError, match=r"66965, above 65535; move it with PODREC_LAKE_S3_ENDPOINT"
    ):
        localinfra.check_ports(store)


def test_the_cluster_profiles_spark_requires_its_secret_from_a_file_never_a_command_line(
    tmp_path: Path,
) -> None:
    settings = load_settings(profile="cluster", data={"dir": str(tmp_path)})
    secret = settings.spark.auth_secret
    assert secret is not None
    master, *workers = localinfra.spark_standalone_services(settings)
    auth = tmp_path / "spark" / "spark-auth.properties"
    for service in (master, *workers):
        command = service.command()
        assert command[command.index("--properties-file") + 1] == str(auth)
        assert secret.get_secret_value() not in " ".join(command) + repr(service.env)
    workers[0].prepare()  # a worker started alone writes it too
    assert auth.stat().st_mode & 0o777 == 0o600
    assert auth.read_text().splitlines() == [
        "spark.authenticate=true", f"spark.authenticate.secret={secret.get_secret_value()}",
        "spark.ui.killEnabled=false",
    ]  # fmt: skip
    # Without a secret (a standalone master of the local profile) nothing changes.
    local = load_settings(data={"dir": str(tmp_path / "local")}, spark={"master": "spark://127.0.0.1:7077"})
    assert not any("--properties-file" in s.command() for s in localinfra.spark_standalone_services(local))


def test_the_object_store_signs_its_internal_requests_and_locks_its_grpc_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "podrec")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3-secret-key")
    settings = load_settings(
        profile="cluster", data={"dir": str(tmp_path)}, cache={"dir": str(tmp_path / "cache")}
    )
    (store,) = localinfra.object_store_service(settings)
    (settings.cache.path / "bin").mkdir(parents=True)
    (settings.cache.path / "bin" / "weed").touch()
    home = tmp_path / "seaweedfs"
    assert store.command()[1:3] == [f"-config_dir={home}", "server"]  # a global flag, before the command
    store.prepare()
    config = (home / "security.toml").read_text()
    assert (home / "security.toml").stat().st_mode & 0o777 == 0o600
    for section in ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read"):
        assert f"[{section}]\nkey = " in config
    for part in ("master", "volume", "filer", "s3", "client"):
        assert f'[grpc.{part}]\ncert = "{home / "tls" / "node.crt"}"' in config
    # The CA signed one certificate and its key is gone: nobody can make another.
    tls = home / "tls"
    assert tls.stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in tls.iterdir()) == ["ca.crt", "node.crt", "node.key"]
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tls / "ca.crt"), str(tls / "node.crt")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    store.prepare()  # every start: new keys, a new CA
    assert (home / "security.toml").read_text() != config


def test_only_the_last_kafka_node_provisions_the_roles_once_the_quorum_answers(tmp_path: Path) -> None:
    settings = load_settings(profile="cluster", data={"dir": str(tmp_path)})
    assert [n.provision is not None for n in localinfra.kafka_services(settings)] == [False, False, True]
