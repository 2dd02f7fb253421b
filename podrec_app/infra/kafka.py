"""Apache Kafka in KRaft mode: one node per loopback address of the bootstrap, each broker and
controller, with SASL users per role and their ACLs when the profile asks for them."""

from __future__ import annotations

import base64
import subprocess
import time
import uuid
from pathlib import Path

from podrec.ingest.kafka_security import (
    LOGIN_MODULES,
    client_config,
    grants,
    jaas_quote,
    spark_source_options,
)
from podrec.settings import KAFKA_ROLES, KafkaSettings, PodrecSettings
from podrec_app.infra.supervisor import INFRA_DIR, InfraError, Service, host_port, properties_value


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
        f"listener.name.sasl_plaintext.{mechanism.lower()}.sasl.jaas.config={properties_value(jaas)}",
        "sasl.mechanism.controller.protocol=PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        f"listener.name.controller.plain.sasl.jaas.config={properties_value(controller)}",
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
    addresses = [host_port(a.strip(), 9092) for a in settings.kafka.bootstrap.split(",") if a.strip()]
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
