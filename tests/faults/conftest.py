"""The fault suite's own Kafka broker and FerretDB (free ports, own state), so killing them on purpose
never touches the services the rest of the suite shares; and, for the tests that need it, the whole
cluster profile on free ports (``cluster_profile``)."""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from podrec.ingest.kafka_security import client_config
from podrec.lake.object_store import object_store_environment
from podrec.settings import PodrecSettings, load_settings
from podrec_app import localinfra
from tests.conftest import make_settings


def port_below_ephemeral() -> int:
    """A free port below the kernel's ephemeral range. A client that keeps reconnecting to a killed
    server's ephemeral port can, now and then, connect to itself on that very port (TCP self-connect)
    and hold it, so the restarted server could not bind it."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.Random().sample(range(max(1024, low - 12_000), low), 500):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port below {low}")


@pytest.fixture(scope="session")
def fault_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodrecSettings]:
    own = make_settings(tmp_path_factory.mktemp("faults")).with_(
        kafka={"bootstrap": f"127.0.0.1:{port_below_ephemeral()}", "controller_port": port_below_ephemeral()},
        mongo={"uri": f"mongodb://127.0.0.1:{port_below_ephemeral()}/"},
    )
    localinfra.up(own)
    yield own
    localinfra.down(own)


def kill_9(settings: PodrecSettings, name: str) -> int:
    """SIGKILL a service this suite started (its whole process group); wait until it is gone."""
    (service,) = [s for s in localinfra.status(settings) if s.name == name]
    assert service.pid is not None, f"{name} is not running"
    os.killpg(service.pid, signal.SIGKILL)
    while any(s.running for s in localinfra.status(settings) if s.name == name):
        time.sleep(0.1)
    with contextlib.suppress(ChildProcessError):  # our child: reap it, so no zombie is left
        os.waitpid(service.pid, os.WNOHANG)
    return service.pid


def restart(settings: PodrecSettings, name: str, within_s: float = 120.0) -> None:
    """Start a killed service again on its port. The killed server's half-closed connections can hold
    the port (FIN_WAIT2) until its clients close them or the kernel times them out (60 s): wait for it."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            localinfra.up(settings, only=[name])
            return
        except localinfra.InfraError as exc:
            if "is taken" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(1)


def settings_for(settings: PodrecSettings, root: Path, tag: str) -> PodrecSettings:
    """The suite's services with a topic, consumer group, lake and data folder of one test's own."""
    return settings.with_(
        kafka={"events_topic": f"events-{tag}", "consumer_group": f"bronze-{tag}"},
        lake={"uri": str(root / "lake")},
    )


def consecutive_free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports below the ephemeral range (a KRaft quorum's
    controllers, a standalone master and its workers)."""
    while True:
        base = port_below_ephemeral()
        if all(localinfra.port_free("127.0.0.1", base + i) for i in range(count)):
            return base


def port_with_grpc() -> int:
    """A free port whose SeaweedFS gRPC twin (+ 10000) is free too."""
    while True:
        port = port_below_ephemeral()
        if port < 55535 and localinfra.port_free("127.0.0.1", port + 10000):
            return port


def await_group_coordinator(settings: PodrecSettings, within_s: float = 180.0) -> None:
    """A fresh cluster creates its offsets topic on the first group request, and answers NOT_COORDINATOR
    until that topic's leaders are elected: wait for a group's offsets to be served."""
    consumer = Consumer({**client_config(settings.kafka), "group.id": "podrec-faults-ready"})
    deadline = time.monotonic() + within_s
    try:
        while True:
            try:
                consumer.committed([TopicPartition("podrec-faults-ready", 0)], timeout=10)
                return
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
    finally:
        consumer.close()


@dataclass(frozen=True)
class ClusterProfile:
    """The cluster profile as ``podrec infra up --profile cluster`` starts it, on free ports: its
    settings, and the environment that makes a child process (``podrec …``, a Dagster run) use it."""

    settings: PodrecSettings
    env: dict[str, str] = field(repr=False)  # it holds the object store's secret key: never in a report


@pytest.fixture(scope="session")
def cluster_profile() -> Iterator[ClusterProfile]:
    """Every service of the profile but the Dagster daemon (its schedule and lag sensor would start runs
    of their own), once per session: a Spark standalone master with two workers (``spark.authenticate``),
    three SASL Kafka nodes (a user and ACLs per client role), SeaweedFS (signed inner ports), PostgreSQL
    (FerretDB's store, and the lake's commit lock) and FerretDB. Credentials are the profile's own,
    minted into its data folder; only the serving store's, whose address is part of the minted URI, is
    minted here first, on a free port. Clients made here with ``client_config(kafka)`` and no role log
    in as the brokers' own user, the super user: name a role to get that role's rights."""
    # PostgreSQL runs as the postgres user, who cannot enter pytest's owner-only temporary folders.
    root = Path(tempfile.mkdtemp(prefix="podrec-cluster-", dir="/tmp"))
    root.chmod(0o755)
    minted = root / "data" / "secrets"
    minted.mkdir(parents=True, mode=0o700)
    login = minted / "PODREC_MONGO_URI"
    login.touch(mode=0o600)
    login.write_text(
        f"mongodb://podrec:{secrets.token_urlsafe(24)}@127.0.0.1:{port_below_ephemeral()}/?authMechanism=PLAIN"
    )
    spark_master = consecutive_free_ports(3)  # workers on the next two
    own = {
        "PODREC_PROFILE": "cluster",
        "PODREC_DATA_DIR": str(root / "data"),
        "PODREC_SPARK_MASTER": f"spark://127.0.0.1:{spark_master}",
        "PODREC_SPARK_UI_PORT": str(port_below_ephemeral()),
        "PODREC_KAFKA_BOOTSTRAP": ",".join(f"127.0.0.1:{port_below_ephemeral()}" for _ in range(3)),
        "PODREC_KAFKA_CONTROLLER_PORT": str(consecutive_free_ports(3)),
        "PODREC_LAKE_S3_ENDPOINT": f"http://127.0.0.1:{port_with_grpc()}",
        "PODREC_OBJECT_STORE_MASTER_PORT": str(port_with_grpc()),
        "PODREC_OBJECT_STORE_VOLUME_PORT": str(port_with_grpc()),
        "PODREC_OBJECT_STORE_FILER_PORT": str(port_with_grpc()),
        "PODREC_POSTGRES_PORT": str(port_below_ephemeral()),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in own.items():
            patch.setenv(name, value)
        for name in (
            "PODREC_SECRETS_DIR",
            "PODREC_MONGO_URI",
            "PODREC_LAKE_COMMIT_LOCK",
            "PODREC_CONFIG_FILE",
        ):
            patch.delenv(name, raising=False)
        settings = load_settings()
    # The object store's key pair (minted by the profile) for SeaweedFS and for this process's reads
    # through delta-rs; the rest of the profile's environment is for its child processes.
    profile_env = localinfra.cluster_environment(settings)
    keys = {name: profile_env[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    children = {k: v for k, v in os.environ.items() if not k.startswith(("PODREC_", "DAGSTER_", "AWS_"))}
    services = [s.name for s in localinfra.services(settings) if s.name != "dagster-daemon"]
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**keys, **object_store_environment(settings.lake)}.items():
            patch.setenv(name, value)
        try:
            started = localinfra.up(settings, only=services, timeout_s=240)
            assert all(s.healthy for s in started), [s.describe() for s in started]
            await_group_coordinator(settings)
            yield ClusterProfile(settings, {**children, **own, **keys})
        finally:
            localinfra.down(settings)
            shutil.rmtree(root, ignore_errors=True)
