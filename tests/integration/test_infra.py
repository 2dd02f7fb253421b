"""The local infrastructure launcher against the real Kafka broker and FerretDB processes."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from podrec_app import localinfra
from tests.conftest import make_settings, settings_env

pytestmark = pytest.mark.integration


def test_up_twice_is_harmless_and_down_leaves_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    try:
        first = localinfra.up(settings)
        assert [s.name for s in first] == ["kafka", "ferretdb"]
        assert all(s.healthy for s in first)
        again = localinfra.up(settings)
        assert [s.pid for s in again] == [s.pid for s in first]
        assert all(s.healthy for s in localinfra.status(settings))
        assert (settings.data.path / "kafka" / "logs" / "meta.properties").exists()
    finally:
        stopped = localinfra.down(settings)
    assert stopped == ["kafka", "ferretdb"]
    for s in first:
        assert s.pid is not None and not localinfra.group_alive(s.pid)
    assert not any(s.running for s in localinfra.status(settings))
    assert localinfra.down(settings) == []


def test_taken_port_names_the_port_and_setting(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    port = int(settings.kafka.bootstrap.rsplit(":", 1)[1])
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        with pytest.raises(localinfra.InfraError, match=f"port {port}.*PODREC_KAFKA_BOOTSTRAP"):
            localinfra.up(settings)
    # Refused before anything started: FerretDB was not left running on its own.
    assert not any(s.running for s in localinfra.status(settings))


def test_cli_status_reports_the_running_services(local_infra, settings) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "podrec_app.cli", "infra", "status"],
        env=settings_env(settings), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "kafka: running" in result.stdout
    assert "ferretdb: running" in result.stdout
