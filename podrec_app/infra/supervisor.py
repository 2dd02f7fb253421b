"""The supervisor every local service runs under: a ``Service`` says how to start, probe and stop one
process; ``start_all`` launches them as process groups, waits for health and records PIDs, and
``stop`` ends a whole group and waits until it is gone. ``running`` does the same for a web process
for the length of a ``with`` block."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"  # the repository's infra/ folder

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


def host_port(address: str, default_port: int) -> tuple[str, int]:
    host, _, port = address.rpartition(":") if ":" in address else (address, "", "")
    return host or "127.0.0.1", int(port or default_port)


def properties_value(value: str) -> str:
    """``value`` as a .properties value: a backslash there escapes the next character, so it is doubled."""
    return value.replace("\\", "\\\\")


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


def pid_of(service: Service) -> int | None:
    try:
        pid = int(service.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid, service.process_marker) else None


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


def launch(service: Service) -> tuple[int, subprocess.Popen | None]:
    """Start ``service`` unless it runs already: its pid, and the process if this call started it."""
    pid = pid_of(service)
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


def settle(service: Service, pid: int, proc: subprocess.Popen | None, timeout_s: float) -> ServiceStatus:
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


def stop(service: Service, timeout_s: float = 30.0) -> bool:
    """Stop the service's process group: its stop signal, then SIGKILL if it lingers."""
    pid = pid_of(service)
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
