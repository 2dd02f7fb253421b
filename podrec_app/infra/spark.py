"""A Spark standalone master and its workers, when ``PODREC_SPARK_MASTER`` is a ``spark://`` address
on loopback."""

from __future__ import annotations

import importlib.util
import json
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from podrec.settings import PodrecSettings
from podrec_app.infra.supervisor import Service, host_port, properties_value


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
    host, port = host_port(spark.master.removeprefix("spark://"), 7077)
    home = settings.data.path / "spark"
    auth = home / "spark-auth.properties"
    properties = () if spark.auth_secret is None else ("--properties-file", str(auth))

    def write_auth() -> None:
        if spark.auth_secret is None:
            return
        home.mkdir(parents=True, exist_ok=True)
        auth.touch(mode=0o600)
        auth.chmod(0o600)
        secret = properties_value(spark.auth_secret.get_secret_value())
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
