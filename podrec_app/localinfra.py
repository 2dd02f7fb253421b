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
never calls this module."""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from podrec.ingest.kafka_security import (
    LOGIN_MODULES,
    client_config,
    grants,
    jaas_quote,
    spark_source_options,
)
from podrec.settings import KAFKA_ROLES, PROFILES, KafkaSettings, PodrecSettings

INFRA_DIR = Path(__file__).resolve().parent.parent / "infra"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class InfraError(RuntimeError):
    """A local service could not start or stop; the message says why and what to change."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    address: str
    healthy: bool

    @property
    def running(self) -> bool:
        return self.pid is not None

    def describe(self) -> str:
        if not self.running:
            return f"{self.name}: stopped ({self.address})"
        state = "healthy" if self.healthy else "starting or unhealthy"
        return f"{self.name}: running, pid {self.pid}, {self.address}, {state}"


@dataclass(frozen=True)
class Service:
    """One local service: how to prepare, start and probe it."""

    name: str
    host: str
    port: int
    setting: str  # the environment variable that moves it
    process_marker: str  # a string in its command line, to tell our process from a reused PID
    command: Callable[[], list[str]]
    prepare: Callable[[], None]
    probe: Callable[[], bool]
    state_dir: Path
    extra_ports: tuple[int, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # defaults for its environment; the caller's own win
    stop_signal: int = signal.SIGTERM  # the signal that shuts it down cleanly
    provision: Callable[[], None] | None = None  # idempotent set-up once it is healthy (Kafka's users, ACLs)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}" if self.port else f"{self.host} (no port)"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / f"{self.name}.out"


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    host, _, port = address.rpartition(":") if ":" in address else (address, "", "")
    return host or "127.0.0.1", int(port or default_port)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_free(host: str, port: int) -> bool:
    """Could a server bind ``host:port`` now (what a service start checks first)?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _proc_stat(pid: int | str) -> tuple[str, int] | None:
    """(state, process group) of a process, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces
    return fields[0], int(fields[2])


def _alive(pid: int, marker: str) -> bool:
    """Is ``pid`` one of our service processes, still running?"""
    stat = _proc_stat(pid)
    if stat is None or (stat[0] in "ZX" and not group_alive(pid)):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    # A JVM whose main thread has returned shows an empty command line while its shutdown
    # hooks still run; a PID reused by another program shows that program's command line.
    return marker in cmdline or cmdline == ""


def group_alive(pgid: int) -> bool:
    """Does any process of the group still run? Zombies awaiting a reaper do not count."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(entry.name)
            if stat is not None and stat[1] == pgid and stat[0] not in "ZX":
                return True
    return False


def _kafka_cluster_id() -> str:
    # Kafka cluster ids are 16 random bytes in unpadded URL-safe base64.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def kafka_users(kafka: KafkaSettings) -> dict[str, str]:
    """Every SASL user of ``kafka`` and its password: the brokers' own (``sasl_username``) first, then
    each role's. Two roles may share a user, not with two passwords."""
    users: dict[str, str] = {}
    for role in (None, *KAFKA_ROLES):
        user, password = kafka.credential(role)
        if users.setdefault(user, password.get_secret_value()) != password.get_secret_value():
            raise InfraError(
                f"Kafka user {user} is given two passwords: give each PODREC_KAFKA_*_SASL_USERNAME that "
                "names it the same PODREC_KAFKA_*_SASL_PASSWORD"
            )
    return users


def kafka_listener(kafka: KafkaSettings) -> tuple[list[str], list[str]]:
    """The security lines of a local node's server.properties and, for SCRAM, the storage format's
    ``--add-scram`` arguments: the client listener speaks what the settings ask every client to speak.

    PLAINTEXT stays open (the local profile: no login, no authorizer, nothing to pay). With SASL every
    listener needs a login. The client listener takes the settings' mechanism: PLAIN users (the brokers'
    own and the roles') live in its JAAS line; SCRAM users in the cluster's metadata, the brokers' own
    created when the storage is formatted, the roles' by ``provision_kafka`` once the nodes answer. The
    controller listener (the quorum's traffic between nodes) takes PLAIN with the brokers' own user
    only, listed in its JAAS line: KRaft keeps SCRAM users in the metadata the quorum itself serves, so
    the quorum cannot log in with them. StandardAuthorizer then checks every request against the ACLs
    (``grants``), and the brokers' own user is the one super user."""
    protocol = kafka.security_protocol
    if protocol == "PLAINTEXT":
        return ["listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT"], []  # fmt: skip
    if protocol != "SASL_PLAINTEXT" or kafka.sasl_username is None or kafka.sasl_password is None:
        raise InfraError(
            f"the local Kafka broker speaks PLAINTEXT or SASL_PLAINTEXT, not {protocol} (it has no "
            "certificates): change PODREC_KAFKA_SECURITY_PROTOCOL or point PODREC_KAFKA_BOOTSTRAP at your "
            "cluster"
        )
    mechanism, users = str(kafka.sasl_mechanism), kafka_users(kafka)
    user, password = kafka.sasl_username, kafka.sasl_password.get_secret_value()
    if ";" in user:  # super.users separates principals with it
        raise InfraError("the local broker's own user (PODREC_KAFKA_SASL_USERNAME) cannot hold ';'")
    jaas = spark_source_options(kafka)["kafka.sasl.jaas.config"]
    if mechanism == "PLAIN":
        listed = "".join(f' user_{u}="{jaas_quote(p)}"' for u, p in users.items())
        jaas = f"{jaas.removesuffix(';')}{listed};"
    controller = (
        f'{LOGIN_MODULES["PLAIN"]} required username="{jaas_quote(user)}" password="{jaas_quote(password)}" '
        f'user_{user}="{jaas_quote(password)}";'
    )
    lines = [
        "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "inter.broker.listener.name=SASL_PLAINTEXT",
        f"sasl.enabled.mechanisms={mechanism}",
        f"sasl.mechanism.inter.broker.protocol={mechanism}",
        f"listener.name.sasl_plaintext.{mechanism.lower()}.sasl.jaas.config={_properties_value(jaas)}",
        "sasl.mechanism.controller.protocol=PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        f"listener.name.controller.plain.sasl.jaas.config={_properties_value(controller)}",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        f"super.users=User:{user}",
    ]
    scram = []
    if mechanism.startswith("SCRAM-"):
        # Kafka's storage tool splits the credential at commas and knows no escapes (quotes are stripped).
        if any(c in value for value in (user, password) for c in ",[]"):
            raise InfraError(
                "the local broker cannot create a SCRAM user whose name or password holds ',', '[' or ']': "
                "change PODREC_KAFKA_SASL_USERNAME / _PASSWORD, or use PODREC_KAFKA_SASL_MECHANISM=PLAIN"
            )
        scram = ["--add-scram", f'{mechanism}=[name="{user}",password="{password}"]']
    return lines, scram


def _properties_value(value: str) -> str:
    """``value`` as a .properties value: a backslash there escapes the next character, so it is doubled."""
    return value.replace("\\", "\\\\")


def provision_kafka(kafka: KafkaSettings, timeout_s: float = 60.0) -> None:
    """Give each role of a SASL cluster podrec started its user and its ACLs (``grants``), as the brokers'
    own user, then wait until each role's user logs in. Nothing to do for PLAINTEXT.

    Idempotent (a SCRAM password is set again, an existing ACL is kept), so ``infra up`` runs it on
    every start — a changed password or topic takes effect — and anything that adds topics of its own
    (a test) runs it with those. ACLs name one topic or group each, never a prefix."""
    if not kafka.sasl:
        return
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    own = kafka.credential()[0]
    roles = {user: password for user, password in kafka_users(kafka).items() if user != own}
    admin = AdminClient({**client_config(kafka), "log_level": 0})
    try:
        if str(kafka.sasl_mechanism).startswith("SCRAM-") and roles:
            info = ScramCredentialInfo(ScramMechanism[str(kafka.sasl_mechanism).replace("-", "_")], 4096)
            upserts = [UserScramCredentialUpsertion(u, info, p.encode()) for u, p in roles.items()]
            for future in admin.alter_user_scram_credentials(upserts, request_timeout=timeout_s).values():
                future.result()
        acls = [
            AclBinding(ResourceType[g.resource.upper()], g.name, ResourcePatternType.LITERAL,
                       f"User:{g.user}", "*", AclOperation[g.operation], AclPermissionType.ALLOW)
            for g in grants(kafka) if g.user != own
        ]  # fmt: skip
        for future in (admin.create_acls(acls, request_timeout=timeout_s) if acls else {}).values():
            future.result()
    except KafkaException as exc:
        raise InfraError(f"giving Kafka's roles their users and ACLs failed: {exc.args[0].str()}") from None
    # A new user reaches every node with the metadata, a moment later: the roles log in before `up` returns.
    deadline = time.monotonic() + timeout_s
    for role in KAFKA_ROLES:
        client = AdminClient({**client_config(kafka, role), "log_level": 0})
        while True:
            try:
                client.list_topics(timeout=2)
                break
            except KafkaException:
                if time.monotonic() > deadline:
                    raise InfraError(f"Kafka's {role} user cannot log in after {timeout_s:.0f}s") from None


def _kafka_node_lines(nodes: int, node_id: int, host: str, controller_ports: list[int]) -> list[str]:
    """The quorum and replication lines of one node of ``nodes``: a single node formats itself as its
    own quorum; a cluster names its voters, replicates every topic three ways and accepts a write
    once two replicas have it."""
    if nodes == 1:
        quorum = [f"controller.quorum.bootstrap.servers={host}:{controller_ports[0]}"]
    else:
        voters = ",".join(f"{i + 1}@{host}:{p}" for i, p in enumerate(controller_ports))
        quorum = [f"controller.quorum.voters={voters}"]
    replicas, in_sync = min(nodes, 3), min(nodes, 2)
    return [
        f"node.id={node_id}",
        *quorum,
        f"default.replication.factor={replicas}",
        f"min.insync.replicas={in_sync}",
        f"offsets.topic.replication.factor={replicas}",
        f"transaction.state.log.replication.factor={replicas}",
        f"transaction.state.log.min.isr={in_sync}",
        f"share.coordinator.state.topic.replication.factor={replicas}",
        f"share.coordinator.state.topic.min.isr={in_sync}",
    ]


def kafka_services(settings: PodrecSettings) -> list[Service]:
    """One KRaft node (broker and controller) per loopback address of ``PODREC_KAFKA_BOOTSTRAP``.

    One address: the node ``kafka``, state in ``data/kafka``. Several (e.g. three): ``kafka-1``…, each
    with its state in ``data/kafka/node-<i>`` and its controller on ``PODREC_KAFKA_CONTROLLER_PORT`` + i - 1,
    one cluster id for all, topics replicated three ways with ``min.insync.replicas=2``."""
    addresses = [_host_port(a.strip(), 9092) for a in settings.kafka.bootstrap.split(",") if a.strip()]
    return [_kafka_node(settings, addresses, i) for i in range(len(addresses))]


def _kafka_cluster_id_for(root: Path, nodes: int) -> str:
    """A new id for a single node; the id every node of a cluster shares (kept in ``root/cluster.id``)."""
    if nodes == 1:
        return _kafka_cluster_id()
    stored = root / "cluster.id"
    if not stored.exists():
        root.mkdir(parents=True, exist_ok=True)
        stored.write_text(_kafka_cluster_id())
    return stored.read_text().strip()


def _kafka_node(settings: PodrecSettings, addresses: list[tuple[str, int]], index: int) -> Service:
    nodes, (host, port) = len(addresses), addresses[index]
    controller_ports = [settings.kafka.controller_port + i for i in range(nodes)]
    controller = controller_ports[index]
    root = settings.data.path / "kafka"
    single = nodes == 1
    home = root if single else root / f"node-{index + 1}"
    protocol = settings.kafka.security_protocol
    libs = settings.cache.path / "kafka" / "libs"
    config = home / "server.properties"
    log_dirs = home / "logs"

    def java_cmd(main: str, *args: str) -> list[str]:
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise InfraError(f"Kafka is not installed in {libs}; run `make setup` first.")
        return [
            "java", "-Xms256m", "-Xmx768m", "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={INFRA_DIR / 'kafka' / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={home}",
            "-cp", f"{libs}/*", main, *args,
        ]  # fmt: skip

    def prepare() -> None:
        listener, scram = kafka_listener(settings.kafka)
        home.mkdir(parents=True, exist_ok=True)
        config.touch(mode=0o600)  # it may hold the SASL password: readable by its owner only
        config.chmod(0o600)
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    *_kafka_node_lines(nodes, index + 1, host, controller_ports),
                    f"listeners={protocol}://{host}:{port},CONTROLLER://{host}:{controller}",
                    f"advertised.listeners={protocol}://{host}:{port}",
                    "controller.listener.names=CONTROLLER",
                    *listener,
                    f"log.dirs={log_dirs}",
                    "num.partitions=4",
                    "group.initial.rebalance.delay.ms=0",
                    # A week of events stays on the broker, so a day can be replayed.
                    "log.retention.hours=168",
                    "auto.create.topics.enable=true",
                ]
            )
            + "\n"
        )
        if not (log_dirs / "meta.properties").exists():
            # A KRaft node's storage is formatted once, before its first start.
            cmd = java_cmd(
                "kafka.tools.StorageTool", "format", *(["--standalone"] if single else []),
                # One token, so an id that starts with "-" (1 in 32) is never read as an option.
                f"--cluster-id={_kafka_cluster_id_for(root, nodes)}", "-c", str(config), *scram,
            )  # fmt: skip
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                output = result.stdout + result.stderr
                for password in kafka_users(settings.kafka).values() if settings.kafka.sasl else ():
                    output = output.replace(password, "***")
                raise InfraError(f"formatting Kafka storage failed:\n{output}")

    def probe() -> bool:
        from confluent_kafka.admin import AdminClient

        try:
            connection = settings.kafka.updated(bootstrap=f"{host}:{port}")
            AdminClient({**client_config(connection), "log_level": 0}).list_topics(timeout=2)
        except Exception:
            return False
        return True

    return Service(
        name="kafka" if single else f"kafka-{index + 1}",
        host=host,
        port=port,
        extra_ports=(controller,),
        setting="PODREC_KAFKA_BOOTSTRAP (controller: PODREC_KAFKA_CONTROLLER_PORT)",
        process_marker=str(config),  # unique per node: its own configuration file
        command=lambda: java_cmd("kafka.Kafka", str(config)),
        prepare=prepare,
        probe=probe,
        state_dir=home,
        # Once the last node answers, the quorum can record the roles' users and ACLs.
        provision=(lambda: provision_kafka(settings.kafka)) if index == nodes - 1 else None,
    )


def _postgres_bin(program: str) -> str:
    """A PostgreSQL server program (Debian keeps them off PATH, under /usr/lib/postgresql/<v>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{program}"), key=lambda p: int(p.parts[-3]))
    if found:
        return str(found[-1])
    if (on_path := shutil.which(program)) is not None:
        return on_path
    raise InfraError(f"PostgreSQL's {program} is not installed; run `make setup` first.")


def _postgres_answers(host: str, port: int) -> bool:
    ready = [_postgres_bin("pg_isready"), "-q", "-h", host, "-p", str(port)]
    return subprocess.run(ready, capture_output=True, check=False).returncode == 0


def _as_postgres_owner(home: Path) -> list[str]:
    """PostgreSQL refuses to run as root: as root, ``home`` is handed to the ``postgres`` user and
    the programs run as it; as anyone else they run as that user."""
    if os.geteuid() != 0:
        return []
    shutil.chown(home, "postgres", "postgres")
    owner = ["runuser", "-u", "postgres", "--"]
    if subprocess.run([*owner, "test", "-w", str(home)], check=False).returncode != 0:
        raise InfraError(
            f"PostgreSQL runs as the postgres user, which cannot reach {home}: a folder above it is "
            "closed to other users (chmod o+x it) — or move PODREC_DATA_DIR"
        )
    return owner


def postgres_service(settings: PodrecSettings) -> list[Service]:
    """The PostgreSQL behind a ``postgresql`` FerretDB, initialised under ``<data>/postgres`` with the
    user and password of ``PODREC_MONGO_URI`` as its only login (SCRAM-SHA-256 on loopback); none for
    the SQLite backend. It also holds a ``dagster`` database for the instance's storage."""
    if settings.mongo.local_backend != "postgresql":
        return []
    mongo = urlsplit(settings.mongo.uri.get_secret_value())
    host, port = mongo.hostname or "127.0.0.1", settings.postgres.port
    home = settings.data.path / "postgres"
    cluster = home / "cluster"

    def prepare() -> None:
        home.mkdir(parents=True, exist_ok=True)
        owner = _as_postgres_owner(home)
        if (cluster / "PG_VERSION").exists():
            return
        if not (mongo.username and mongo.password):
            raise InfraError(
                "FerretDB on PostgreSQL needs a user and password in PODREC_MONGO_URI "
                "(mongodb://user:password@host:port/?authMechanism=PLAIN)"
            )
        password_file = home / "initdb.pw"
        password_file.touch(mode=0o600)
        try:
            password_file.write_text(unquote(mongo.password))
            if owner:
                shutil.chown(password_file, "postgres", "postgres")
            steps = [
                [*owner, _postgres_bin("initdb"), "-D", str(cluster), "-U", unquote(mongo.username),
                 f"--pwfile={password_file}", "--auth=scram-sha-256", "-E", "UTF8", "--no-locale"],
                # Single-user mode creates the database before the server ever listens.
                [*owner, _postgres_bin("postgres"), "--single", "-D", str(cluster), "postgres"],
            ]  # fmt: skip
            for step, stdin in zip(steps, ("", "CREATE DATABASE dagster;\n"), strict=True):
                result = subprocess.run(step, input=stdin, capture_output=True, text=True, check=False)
                if result.returncode != 0:
                    shutil.rmtree(cluster, ignore_errors=True)  # the next `up` starts over
                    raise InfraError(f"initialising PostgreSQL failed:\n{result.stdout}{result.stderr}")
        finally:
            password_file.unlink(missing_ok=True)

    def command() -> list[str]:
        return [
            *_as_postgres_owner(home), _postgres_bin("postgres"), "-D", str(cluster), "-p", str(port),
            "-k", str(home), "-c", f"listen_addresses={host}",
        ]  # fmt: skip

    return [
        Service(
            name="postgres",
            host=host,
            port=port,
            setting="PODREC_POSTGRES_PORT",
            process_marker=str(cluster),
            command=command,
            prepare=prepare,
            probe=lambda: _postgres_answers(host, port),
            state_dir=home,
            stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM would wait for every client to leave
        )
    ]


def ferretdb_service(settings: PodrecSettings) -> Service:
    """FerretDB on the configured backend: SQLite files under ``<data>/ferretdb``, or the local
    PostgreSQL, which then checks every client's user and password (FerretDB passes them on)."""
    uri = settings.mongo.uri.get_secret_value()
    parts = urlsplit(uri)
    host, port = parts.hostname or "127.0.0.1", parts.port or 27017
    home = settings.data.path / "ferretdb"
    binary = settings.cache.path / "bin" / "ferretdb"
    if settings.mongo.local_backend == "postgresql":
        backend = [
            "--handler=postgresql",
            f"--postgresql-url=postgres://{host}:{settings.postgres.port}/postgres",
        ]
    else:
        backend = ["--handler=sqlite", f"--sqlite-url=file:{home / 'sqlite'}/"]

    def command() -> list[str]:
        if not binary.exists():
            raise InfraError(f"FerretDB is not built at {binary}; run `make setup` first.")
        return [
            str(binary),
            *backend,
            f"--listen-addr={host}:{port}",
            f"--state-dir={home}",
            "--debug-addr=",
            "--telemetry=disable",
            "--log-level=warn",
        ]

    def probe() -> bool:
        import pymongo

        try:
            # With its credentials: on PostgreSQL even a ping needs a login.
            client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=1000)
            try:
                client.admin.command("ping")
            finally:
                client.close()
        except Exception:
            return False
        return True

    return Service(
        name="ferretdb",
        host=host,
        port=port,
        setting="PODREC_MONGO_URI",
        process_marker=str(binary),
        command=command,
        prepare=lambda: (home / "sqlite").mkdir(parents=True, exist_ok=True),
        probe=probe,
        state_dir=home,
        # FerretDB converts every document it writes or returns and spends a fifth of that in Go's
        # garbage collector; collecting half as often cut its CPU per insert by ~16% and per _id
        # lookup by ~28% (bench, 20,000 lists), for ~25% more peak memory.
        env=(("GOGC", "200"),),
    )


def spark_master_status(host: str, ui_port: int) -> dict | None:
    """The standalone master's own status document (its web UI's /json/), or None."""
    try:
        with urllib.request.urlopen(f"http://{host}:{ui_port}/json/", timeout=2) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def spark_standalone_services(settings: PodrecSettings) -> list[Service]:
    """A Spark standalone master and ``spark.workers`` workers, from pyspark's own ``spark-class``,
    for a ``spark://`` master on loopback; none for ``local[*]`` or a remote master.

    Worker ``i`` listens on the master's port + 1 + i, so a probe can find it in the master's
    status document: it is healthy once the master lists it ALIVE (registered, cores offered).

    With ``PODREC_SPARK_AUTH_SECRET`` the master and workers require it (``spark.authenticate``) of each
    other and of every driver, so only who holds it runs code on them; it reaches them in an owner-only
    properties file, never on a command line (``ps`` shows those to every user). Their web UIs cannot
    kill applications then: the UI asks nobody for anything."""
    spark = settings.spark
    if not spark.master.startswith("spark://"):
        return []
    host, port = _host_port(spark.master.removeprefix("spark://"), 7077)
    home = settings.data.path / "spark"
    auth = home / "spark-auth.properties"
    properties = () if spark.auth_secret is None else ("--properties-file", str(auth))

    def write_auth() -> None:
        if spark.auth_secret is None:
            return
        home.mkdir(parents=True, exist_ok=True)
        auth.touch(mode=0o600)
        auth.chmod(0o600)
        secret = _properties_value(spark.auth_secret.get_secret_value())
        auth.write_text(
            f"spark.authenticate=true\nspark.authenticate.secret={secret}\nspark.ui.killEnabled=false\n"
        )

    spark_home = Path(importlib.util.find_spec("pyspark").origin).parent
    env = (
        ("SPARK_HOME", str(spark_home)),
        ("SPARK_LOCAL_IP", host),
        # Executors start their Python workers with the driver's interpreter (it has podrec's packages).
        ("PYSPARK_PYTHON", sys.executable),
        ("SPARK_NO_DAEMONIZE", "1"),
    )

    def launcher(main: str, *args: str) -> Callable[[], list[str]]:
        return lambda: [str(spark_home / "bin" / "spark-class"), main, *args]

    master = Service(
        name="spark-master",
        host=host,
        port=port,
        extra_ports=(spark.ui_port,),
        setting="PODREC_SPARK_MASTER (web UI: PODREC_SPARK_UI_PORT)",
        process_marker="org.apache.spark.deploy.master.Master",
        command=launcher(
            "org.apache.spark.deploy.master.Master",
            *("--host", host, "--port", str(port), "--webui-port", str(spark.ui_port)),
            *properties,
        ),
        prepare=write_auth,
        probe=lambda: (spark_master_status(host, spark.ui_port) or {}).get("status") == "ALIVE",
        state_dir=home,
        env=env,
    )

    def worker(i: int) -> Service:
        worker_port, work_dir = port + 1 + i, home / f"worker-{i + 1}"

        def prepare() -> None:
            write_auth()  # a worker started alone (after a kill) finds it too
            work_dir.mkdir(parents=True, exist_ok=True)

        def probe() -> bool:
            status = spark_master_status(host, spark.ui_port) or {}
            return any(
                w.get("port") == worker_port and w.get("state") == "ALIVE" for w in status.get("workers", [])
            )

        return Service(
            name=f"spark-worker-{i + 1}",
            host=host,
            port=worker_port,
            setting="PODREC_SPARK_MASTER (workers use the next ports)",
            process_marker=str(work_dir),  # unique per worker: its own work directory
            command=launcher(
                "org.apache.spark.deploy.worker.Worker",
                *("--host", host, "--port", str(worker_port), "--webui-port", "0"),
                *("--cores", str(spark.worker_cores), "--memory", spark.worker_memory),
                *("--work-dir", str(work_dir)),
                *properties,
                f"spark://{host}:{port}",
            ),
            prepare=prepare,
            probe=probe,
            state_dir=home,
            env=env,
        )

    return [master, *(worker(i) for i in range(spark.workers))]


def object_store_service(settings: PodrecSettings) -> list[Service]:
    """SeaweedFS (master, volume server, filer and S3 gateway in one ``weed server``) for an
    ``s3a://`` lake whose ``PODREC_LAKE_S3_ENDPOINT`` is on loopback; none otherwise. Its one S3
    identity is the ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` of the environment, and its inner
    ports answer only its own parts (``seaweedfs_security``); it is healthy once the lake's bucket
    answers (created on the first start)."""
    lake = settings.lake
    if not (lake.on_object_store and lake.s3_endpoint):
        return []
    endpoint = urlsplit(lake.s3_endpoint)
    host, port = endpoint.hostname or "127.0.0.1", endpoint.port or 80
    bucket = urlsplit(lake.root).hostname or ""
    home = settings.data.path / "seaweedfs"
    binary = settings.cache.path / "bin" / "weed"
    store = settings.object_store

    def key_pair() -> tuple[str, str]:
        pair = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
        if not (pair[0] and pair[1]):
            raise InfraError(
                "the local object store needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the "
                "environment (the cluster profile mints them under <data>/secrets)"
            )
        return pair[0], pair[1]

    def prepare() -> None:
        access, secret = key_pair()
        (home / "data").mkdir(parents=True, exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "podrec",
                    "credentials": [{"accessKey": access, "secretKey": secret}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        config = home / "s3.json"
        config.touch(mode=0o600)  # it holds the secret key: readable by its owner only
        config.write_text(json.dumps(identities))
        seaweedfs_security(home)

    def grpc(http_port: int) -> int:
        """SeaweedFS's convention (+ 10000), made explicit on the command line and port-checked."""
        return http_port + 10000

    def command() -> list[str]:
        if not binary.exists():
            raise InfraError(f"SeaweedFS is not built at {binary}; run `make setup` first.")
        # Every port is given, gRPC ones too, and the S3 gateway's Iceberg and Lance catalogs
        # (fixed ports 8181 and 9101 by default) are off, so two stores never collide.
        return [
            str(binary), f"-config_dir={home}", "server", f"-dir={home / 'data'}", f"-ip={host}",
            f"-ip.bind={host}",
            f"-master.port={store.master_port}", f"-master.port.grpc={grpc(store.master_port)}",
            "-master.volumeSizeLimitMB=1024",
            f"-volume.port={store.volume_port}", f"-volume.port.grpc={grpc(store.volume_port)}",
            "-volume.max=0",
            "-filer", f"-filer.port={store.filer_port}", f"-filer.port.grpc={grpc(store.filer_port)}",
            "-s3", f"-s3.port={port}", f"-s3.port.grpc={grpc(port)}", f"-s3.config={home / 's3.json'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]  # fmt: skip

    def probe() -> bool:
        from pyarrow import fs

        access, secret = key_pair()
        try:
            s3 = fs.S3FileSystem(
                access_key=access, secret_key=secret, endpoint_override=f"{host}:{port}",
                scheme=endpoint.scheme, region="us-east-1", allow_bucket_creation=True,
                connect_timeout=1, request_timeout=2,
            )  # fmt: skip
            if s3.get_file_info(bucket).type != fs.FileType.Directory:
                s3.create_dir(bucket)  # raises if the bucket cannot be made
            return True
        except OSError:
            return False

    ports = (store.master_port, store.volume_port, store.filer_port)
    return [
        Service(
            name="seaweedfs",
            host=host,
            port=port,
            extra_ports=(*ports, *(grpc(p) for p in (*ports, port))),
            setting="PODREC_LAKE_S3_ENDPOINT (the parts behind it: PODREC_OBJECT_STORE_*_PORT)",
            process_marker=str(home / "data"),
            command=command,
            prepare=prepare,
            probe=probe,
            state_dir=home,
        )
    ]


# The parts of `weed server` that serve gRPC, and its clients of them: one certificate for all (SeaweedFS
# checks no host name).
SEAWEEDFS_GRPC = ("master", "volume", "filer", "s3", "client")


def seaweedfs_security(home: Path) -> None:
    """SeaweedFS's own ``security.toml`` in ``home`` (owner-only; ``weed -config_dir`` reads it), new at
    every start, so its internal ports are closed to anyone on the machine who lacks its files:

    - the volume servers take a write (``[jwt.signing]``) or a read (``[jwt.signing.read]``) only with a
      token the master signed for that one file, and the filer's HTTP API only with one the S3 gateway
      signed (``[jwt.filer_signing]``, ``.read``), so the store's data is reached through the S3 API
      and its credentials alone;
    - every gRPC port (master, volume, filer, S3) requires mutual TLS (``[grpc]``) with a certificate
      of a CA made here and forgotten at once: its key is deleted after signing the one certificate.

    The keys live no longer than the process (a token expires in seconds), so nothing is kept between
    starts. ``WEED_JWT_*`` variables set by an operator still win, as SeaweedFS documents."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise InfraError("the local object store needs openssl for its certificates; run `make setup` first.")
    tls = home / "tls"
    shutil.rmtree(tls, ignore_errors=True)
    tls.mkdir(mode=0o700, parents=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    (tls / "node.ext").write_text(
        "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    steps = [
        ["req", "-x509", *ec, "-days", "3650", "-subj", "/CN=podrec-seaweedfs-ca",
         "-keyout", "ca.key", "-out", "ca.crt"],
        ["req", *ec, "-subj", "/CN=seaweedfs", "-keyout", "node.key", "-out", "node.csr"],
        ["x509", "-req", "-in", "node.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-days", "3650", "-extfile", "node.ext", "-out", "node.crt"],
    ]  # fmt: skip
    try:
        for step in steps:
            done = subprocess.run([openssl, *step], cwd=tls, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise InfraError(f"making the object store's certificates failed:\n{done.stderr[-2000:]}")
    finally:
        for name in ("ca.key", "ca.srl", "node.csr", "node.ext"):
            (tls / name).unlink(missing_ok=True)
    keys = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
    sections = [f"[{name}]\nkey = {json.dumps(secrets.token_urlsafe(32))}" for name in keys]
    sections.append(f"[grpc]\nca = {json.dumps(str(tls / 'ca.crt'))}")
    cert, key = json.dumps(str(tls / "node.crt")), json.dumps(str(tls / "node.key"))
    sections += [f"[grpc.{part}]\ncert = {cert}\nkey = {key}" for part in SEAWEEDFS_GRPC]
    config = home / "security.toml"
    config.touch(mode=0o600)
    config.chmod(0o600)
    config.write_text("\n\n".join(sections) + "\n")


def cluster_environment(settings: PodrecSettings) -> dict[str, str]:
    """What every process of the cluster profile needs beyond podrec's settings: Dagster's instance
    (its home, and its PostgreSQL URL built from the profile's credentials — the instance's yaml
    names only the variable) and the object store's key pair as the standard ``AWS_*`` variables
    (minted beside the other credentials). Values the caller already set win; empty for any other
    profile."""
    if settings.profile != "cluster":
        return {}
    defaults: dict[str, str] = {"DAGSTER_HOME": str(settings.data.path / "dagster_home")}
    if settings.mongo.local_backend == "postgresql":
        mongo = urlsplit(settings.mongo.uri.get_secret_value())
        # psycopg2: the driver dagster-postgres brings; the user and password stay percent-encoded.
        defaults["PODREC_DAGSTER_POSTGRES_URL"] = (
            f"postgresql+psycopg2://{mongo.username}:{mongo.password}@{mongo.hostname or '127.0.0.1'}:"
            f"{settings.postgres.port}/dagster"
        )
    minted = settings.data.path / "secrets"
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        if (minted / name).is_file():
            defaults[name] = (minted / name).read_text().strip()
    return {name: os.environ.get(name) or value for name, value in defaults.items()}


def dagster_daemon_service(settings: PodrecSettings) -> list[Service]:
    """The Dagster daemon of the cluster profile (schedules, sensors, queued runs) on the instance in
    the local PostgreSQL; none for any other profile. It listens on no port; it is healthy once its
    heartbeats reach the instance."""
    env = cluster_environment(settings)
    if "PODREC_DAGSTER_POSTGRES_URL" not in env:
        return []
    home = Path(env["DAGSTER_HOME"])
    daemon = Path(sys.executable).parent / "dagster-daemon"
    postgres_host = urlsplit(settings.mongo.uri.get_secret_value()).hostname or "127.0.0.1"

    def prepare() -> None:
        from podrec_app.instance_home import made_home  # it reads this module's INFRA_DIR

        made_home(home, "cluster")
        # The daemon opens the instance as it starts, so its database must already answer.
        deadline = time.monotonic() + 60
        while not _postgres_answers(postgres_host, settings.postgres.port):
            if time.monotonic() > deadline:
                raise InfraError("the Dagster daemon needs PostgreSQL, which did not answer within 60s")
            time.sleep(0.5)

    def probe() -> bool:
        check = [str(daemon), "liveness-check"]
        run_env = {**os.environ, **env}
        return subprocess.run(check, capture_output=True, env=run_env, check=False).returncode == 0

    return [
        Service(
            name="dagster-daemon",
            host="127.0.0.1",
            port=0,
            setting="DAGSTER_HOME (instance: PODREC_DAGSTER_POSTGRES_URL)",
            process_marker="dagster-daemon",
            command=lambda: [str(daemon), "run", "-w", str(INFRA_DIR.parent / "workspace.yaml")],
            prepare=prepare,
            probe=probe,
            state_dir=home,
            # The code location it loads reads the same profile, so its schedule and sensor start on.
            env=(*env.items(), ("PODREC_PROFILE", settings.profile)),
        )
    ]


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


def _pid(service: Service) -> int | None:
    try:
        pid = int(service.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid, service.process_marker) else None


def status(settings: PodrecSettings) -> list[ServiceStatus]:
    result = []
    for s in services(settings):
        pid = _pid(s)
        result.append(ServiceStatus(s.name, pid, s.address, pid is not None and s.probe()))
    return result


def check_ports(service: Service) -> None:
    """Refuse to start ``service`` on a port it cannot have, naming the setting that moves it."""
    for port in (p for p in (service.port, *service.extra_ports) if p):  # 0: listens on no port
        if port > 65535:  # a derived port (SeaweedFS's gRPC: + 10000) can overflow
            raise InfraError(
                f"{service.name} would need port {port}, above 65535; move it with {service.setting}."
            )
        if not port_free(service.host, port):
            raise InfraError(
                f"port {port} on {service.host} is taken by another process, so {service.name} "
                f"cannot start; stop that process or move {service.name} with {service.setting}."
            )


def _launch(service: Service) -> tuple[int, subprocess.Popen | None]:
    """Start ``service`` unless it runs already: its pid, and the process if this call started it."""
    pid = _pid(service)
    if pid is not None:
        return pid, None
    check_ports(service)
    service.prepare()
    service.state_dir.mkdir(parents=True, exist_ok=True)
    with service.log_file.open("ab") as log:
        proc = subprocess.Popen(
            service.command(),
            env={**dict(service.env), **os.environ},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: `down` stops it and its children
        )
    service.pid_file.write_text(str(proc.pid))
    return proc.pid, proc


def _await(service: Service, pid: int, proc: subprocess.Popen | None, timeout_s: float) -> ServiceStatus:
    """Wait until ``service`` is healthy; one this call started and that never gets there is stopped."""

    # Poll our own child itself: until it has exec'd, /proc shows Python's command line.
    def alive() -> bool:
        return proc.poll() is None if proc is not None else _alive(pid, service.process_marker)

    if _wait_healthy(service, alive, timeout_s):
        if service.provision is not None:
            service.provision()
        return ServiceStatus(service.name, pid, service.address, True)
    if proc is None:
        raise InfraError(f"{service.name} (pid {pid}) is running but not healthy; see {service.log_file}")
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    service.pid_file.unlink(missing_ok=True)
    tail = service.log_file.read_text(errors="replace")[-2000:]
    raise InfraError(f"{service.name} did not become healthy in {timeout_s:.0f}s:\n{tail}")


def stop_group(proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """Stop a child started with ``start_new_session``: SIGTERM to its group, SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait_healthy(service: Service, is_alive: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_alive():
            return False
        if service.probe():
            return True
        time.sleep(0.25)
    return False


def _reap(pid: int) -> None:
    # Only our own children can be reaped; anything else is the init process's job.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _stop(service: Service, timeout_s: float = 30.0) -> bool:
    """Stop the service's process group: its stop signal, then SIGKILL if it lingers."""
    pid = _pid(service)
    if pid is None:
        service.pid_file.unlink(missing_ok=True)
        return False
    for sig in (service.stop_signal, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and group_alive(pid):
            _reap(pid)
            time.sleep(0.1)
        if not group_alive(pid):
            break
    _reap(pid)
    service.pid_file.unlink(missing_ok=True)
    return True


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
        if _pid(service) is None:
            check_ports(service)
    launched = [(service, *_launch(service)) for service in chosen]
    return [_await(service, pid, proc, timeout_s) for service, pid, proc in launched]


def down(settings: PodrecSettings, only: Iterable[str] | None = None) -> list[str]:
    """Stop every local service podrec started (or those named in ``only``); returns the names
    that were running."""
    return [s.name for s in _chosen(settings, only) if _stop(s)]


@contextmanager
def running(
    command: list[str], health_url: str, env: dict[str, str] | None = None, timeout_s: float = 90.0
) -> Iterator[subprocess.Popen]:
    """Run a local web process until ``health_url`` answers 200; stop it (and its children) after.

    Its output is kept aside and quoted if it dies before answering, so the error says why."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + timeout_s
            while not _answers(health_url):
                if proc.poll() is not None:
                    out.seek(0)
                    tail = out.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"{' '.join(command)} exited with {proc.returncode}:\n{tail}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{health_url} did not answer within {timeout_s:.0f}s")
                time.sleep(0.3)
            yield proc
        finally:
            stop_group(proc)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
