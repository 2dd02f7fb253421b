"""Which local services a deployment's settings call for, decided without starting any."""

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
