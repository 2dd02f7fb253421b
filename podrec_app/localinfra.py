"""The local services behind ``podrec infra``: Kafka, the serving store, and on the cluster profile
a Spark standalone cluster, an S3-API object store, PostgreSQL and Dagster's daemon.

All run as plain child processes on 127.0.0.1 with their state under ``<data_dir>``:
Apache Kafka in KRaft mode (one node per loopback address of the bootstrap, each broker
and controller); FerretDB on SQLite, or on a PostgreSQL started beside it that checks every
login (``PODREC_MONGO_LOCAL_BACKEND=postgresql``); when ``PODREC_SPARK_MASTER`` is a ``spark://``
address on loopback, a standalone master with its workers; for an ``s3a://`` lake whose endpoint
is on loopback, SeaweedFS; on the cluster profile, the Dagster daemon on the instance in that
PostgreSQL. Which of them run follows from the settings alone. ``up`` is idempotent, waits for
health and records PIDs; ``down`` stops each whole process group and waits until it is gone. A
deployment with its own Kafka, MongoDB, Spark or object store points the settings at them and
never calls this module.

Each service is a module of ``podrec_app.infra`` over its supervisor (``infra.supervisor``); this one
says which a deployment runs (``services``) and starts, checks and stops them. The helpers callers
reach for (ports, ``running``, the Kafka provisioning, the cluster's environment) are named here too,
so ``localinfra`` stays the one door to the local stack."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from podrec.settings import PROFILES, PodrecSettings
from podrec_app.infra.dagster_daemon import cluster_environment, dagster_daemon_service
from podrec_app.infra.ferretdb import ferretdb_service
from podrec_app.infra.kafka import kafka_services, provision_kafka
from podrec_app.infra.object_store import object_store_service
from podrec_app.infra.postgres import postgres_service
from podrec_app.infra.spark import spark_master_status, spark_standalone_services
from podrec_app.infra.supervisor import (
    INFRA_DIR,
    LOCAL_HOSTS,
    InfraError,
    Service,
    ServiceStatus,
    check_ports,
    free_port,
    group_alive,
    launch,
    pid_of,
    port_free,
    running,
    settle,
    stop,
    stop_group,
)

__all__ = [
    "INFRA_DIR", "InfraError", "Service", "ServiceStatus", "check_ports", "cluster_environment",
    "cluster_stack_started", "down", "free_port", "group_alive", "kafka_services", "object_store_service",
    "port_free", "provision_kafka", "running", "services", "spark_master_status",
    "spark_standalone_services", "status", "stop_group", "up",
]  # fmt: skip


def services(settings: PodrecSettings) -> list[Service]:
    """The services this deployment runs locally: only those whose address is loopback."""
    candidates = (
        *spark_standalone_services(settings),
        *kafka_services(settings),
        *object_store_service(settings),
        *postgres_service(settings),
        ferretdb_service(settings),
        *dagster_daemon_service(settings),
    )
    return [s for s in candidates if s.host in LOCAL_HOSTS]


def cluster_stack_started() -> bool:
    """Has the cluster profile been used here (its minted credentials exist)?"""
    data_dir = os.environ.get("PODREC_DATA_DIR", PROFILES["cluster"]["data"]["dir"])
    return (Path(data_dir).expanduser() / "secrets").is_dir()


def status(settings: PodrecSettings) -> list[ServiceStatus]:
    result = []
    for s in services(settings):
        pid = pid_of(s)
        result.append(ServiceStatus(s.name, pid, s.address, pid is not None and s.probe()))
    return result


def _chosen(settings: PodrecSettings, only: Iterable[str] | None) -> list[Service]:
    return [s for s in services(settings) if only is None or s.name in set(only)]


def up(
    settings: PodrecSettings, timeout_s: float = 90.0, only: Iterable[str] | None = None
) -> list[ServiceStatus]:
    """Start every local service (or those named in ``only``) that is not already running, then wait
    until each is healthy. All start before any is waited for: the nodes of a Kafka quorum are healthy
    only together, and Spark workers keep registering until their master answers."""
    chosen = _chosen(settings, only)
    # Refuse before starting anything, so a taken port never leaves half the stack running.
    for service in chosen:
        if pid_of(service) is None:
            check_ports(service)
    launched = [(service, *launch(service)) for service in chosen]
    return [settle(service, pid, proc, timeout_s) for service, pid, proc in launched]


def down(settings: PodrecSettings, only: Iterable[str] | None = None) -> list[str]:
    """Stop every local service podrec started (or those named in ``only``); returns the names
    that were running."""
    return [s.name for s in _chosen(settings, only) if stop(s)]
