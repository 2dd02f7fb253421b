"""The fault suite's own Kafka broker and FerretDB (free ports, own state), so killing them on purpose
never touches the services the rest of the suite shares."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from podrec.settings import PodrecSettings
from podrec_app import localinfra
from tests.conftest import make_settings


@pytest.fixture(scope="session")
def fault_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodrecSettings]:
    own = make_settings(tmp_path_factory.mktemp("faults"))
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


def restart(settings: PodrecSettings, name: str) -> None:
    localinfra.up(settings, only=[name])


def settings_for(settings: PodrecSettings, root: Path, tag: str) -> PodrecSettings:
    """The suite's services with a topic, consumer group, lake and data folder of one test's own."""
    return settings.with_(
        kafka={"events_topic": f"events-{tag}", "consumer_group": f"bronze-{tag}"},
        lake={"uri": str(root / "lake")},
    )
