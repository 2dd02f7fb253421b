"""The fault suite's own Kafka broker and FerretDB (free ports, own state), so killing them on purpose
never touches the services the rest of the suite shares."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from podrec.settings import PodrecSettings
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
