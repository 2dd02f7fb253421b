"""What a person sees when a command meets a broken world: one line on stderr naming what failed and
what to do, a non-zero exit, no traceback, and an answer within 30 s (the subprocess is stopped there)."""

import subprocess
import sys
from pathlib import Path

import pytest

from podrec_app.localinfra import free_port
from tests.conftest import settings_env
from tests.integration.test_ingest import isolated

pytestmark = pytest.mark.integration


def podrec(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "podrec_app.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=30, check=False)  # fmt: skip


def one_line_error(done: subprocess.CompletedProcess, *says: str) -> str:
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for part in says:
        assert part in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def env(settings, tmp_path: Path) -> dict[str, str]:
    return settings_env(settings) | {"PODREC_LAKE_URI": str(tmp_path / "lake"), "PYTHONWARNINGS": "ignore"}


@pytest.mark.parametrize(
    "args",
    [("simulate", "--days", "1", "--users", "5"), ("import-events", "ok.csv"), ("ingest",),
     ("evaluate",), ("tune",)],
)  # fmt: skip
def test_kafka_down_is_one_line_within_30_seconds(env, tmp_path: Path, args: tuple[str, ...]) -> None:
    (tmp_path / "ok.csv").write_text("user,item,ts,event_type\na,x,2026-11-20T08:00:00Z,play\n")
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    line = one_line_error(podrec(env | {"PODREC_KAFKA_BOOTSTRAP": address}, *args, cwd=tmp_path),
                          f"Kafka at {address} did not answer", "podrec infra up")  # fmt: skip
    print(line)


@pytest.mark.parametrize("args", [("publish", "status"), ("publish", "rollback"), ("forget", "someone")])
def test_the_serving_store_down_is_one_line(env, tmp_path: Path, args: tuple[str, ...]) -> None:
    uri = f"mongodb://podrec:pw-secret@127.0.0.1:{free_port()}/"
    done = podrec(env | {"PODREC_MONGO_URI": uri}, *args, cwd=tmp_path)
    line = one_line_error(done, "the serving store (MongoDB at mongodb://***@127.0.0.1:", "is unreachable")
    assert "pw-secret" not in line
    print(line)


def test_evaluate_on_a_fresh_lake_says_there_is_nothing_to_evaluate(
    local_infra, settings, env, tmp_path: Path
) -> None:
    own = isolated(settings, tmp_path)  # an empty topic nobody has written to, and no lake
    env = env | {"PODREC_KAFKA_EVENTS_TOPIC": own.kafka.events_topic,
                 "PODREC_KAFKA_CONSUMER_GROUP": own.kafka.consumer_group}  # fmt: skip
    print(one_line_error(podrec(env, "evaluate", cwd=tmp_path), "nothing to evaluate", "podrec simulate"))
    assert not (tmp_path / "lake").exists()


@pytest.mark.parametrize(
    ("content", "says"),
    [(b"", "is empty"), (b"\x00\x01\x02 garbled \xff\xfe", "cannot read"),
     (b"user,item,ts,event_type\n", "no rows"), (b"a,b\n1,2\n", "no user column")],
)  # fmt: skip
def test_a_garbled_or_empty_import_file_is_one_line(env, tmp_path: Path, content: bytes, says: str) -> None:
    log = tmp_path / "log.csv"
    log.write_bytes(content)
    print(one_line_error(podrec(env, "import-events", str(log), cwd=tmp_path), says))
