"""Dagster's daemon on the cluster profile, on the instance in the local PostgreSQL: it runs the
automation conditions, the sensors and the queued runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from podrec.settings import PodrecSettings
from podrec_app.infra.postgres import postgres_answers
from podrec_app.infra.supervisor import INFRA_DIR, InfraError, Service


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
        while not postgres_answers(postgres_host, settings.postgres.port):
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
            # The code location it loads reads the same profile, so its automation and lag sensors start on.
            env=(*env.items(), ("PODREC_PROFILE", settings.profile)),
        )
    ]
