"""PostgreSQL behind FerretDB when ``PODREC_MONGO_LOCAL_BACKEND=postgresql``: it checks every login
(the cluster profile), and holds the Dagster instance of the cluster profile."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

from podrec.settings import PodrecSettings
from podrec_app.infra.supervisor import InfraError, Service


def _postgres_bin(program: str) -> str:
    """A PostgreSQL server program (Debian keeps them off PATH, under /usr/lib/postgresql/<v>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{program}"), key=lambda p: int(p.parts[-3]))
    if found:
        return str(found[-1])
    if (on_path := shutil.which(program)) is not None:
        return on_path
    raise InfraError(f"PostgreSQL's {program} is not installed; run `make setup` first.")


def postgres_answers(host: str, port: int) -> bool:
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
            probe=lambda: postgres_answers(host, port),
            state_dir=home,
            stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM would wait for every client to leave
        )
    ]
