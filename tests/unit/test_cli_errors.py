"""A failing command says in one line what failed and what to do; --debug keeps the traceback."""

import errno

import pytest
from click.testing import CliRunner
from confluent_kafka import KafkaError, KafkaException
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

from podrec_app.cli import command_path, main
from podrec_app.errors import explain


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (ServerSelectionTimeoutError("127.0.0.1:1: [Errno 111] Connection refused"),
         "the serving store (MongoDB at mongodb://***@db.example/) is unreachable: start it"),
        (OperationFailure("Authentication failed.", code=18), "refused the credentials"),
        (OSError(errno.ENOSPC, "No space left on device"), "the disk is full"),
        (RuntimeError("Job aborted.\n  caused by java.io.IOException: No space left on device"),
         "the disk is full"),
        (KafkaException(KafkaError(KafkaError._TRANSPORT, "Broker transport failure")),
         "Kafka: Broker transport failure: check the broker"),
        (ValueError("first line\nsecond line\nthird"),
         "ValueError: first line; run it again with `podrec --debug"),
    ],
)  # fmt: skip
def test_errors_are_explained_in_one_line(
    monkeypatch: pytest.MonkeyPatch, error: Exception, says: str
) -> None:
    monkeypatch.setenv("PODREC_MONGO_URI", "mongodb://user:hunter2@db.example/")
    line = explain(error, "podrec publish status")
    assert line.startswith("podrec publish status failed: ") and says in line
    assert "\n" not in line and "hunter2" not in line


def test_the_command_path_leaves_out_options_and_arguments() -> None:
    assert command_path(["--debug", "publish", "status"]) == "podrec publish status"
    assert command_path(["forget", "some-listener"]) == "podrec forget"
    assert command_path(["import-events", "x.csv", "--like-rating", "4"]) == "podrec import-events"


def test_debug_shows_the_traceback_and_without_it_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    @main.command("explode-for-test")
    def explode() -> None:
        raise ZeroDivisionError("boom")

    try:
        runner = CliRunner()
        quiet = runner.invoke(main, ["explode-for-test"])
        assert quiet.exit_code == 1
        assert quiet.output.strip().splitlines() == [
            "Error: podrec explode-for-test failed: ZeroDivisionError: boom; run it again with "
            "`podrec --debug …` for the traceback"
        ]
        loud = runner.invoke(main, ["--debug", "explode-for-test"])
        assert isinstance(loud.exception, ZeroDivisionError)
    finally:
        main.commands.pop("explode-for-test")


def test_every_command_the_readme_names_is_registered() -> None:
    # A decorator stack without @main.command() defines a function click never sees: podrec --help
    # lists what a person can run.
    listed = set(CliRunner().invoke(main, ["--help"]).output.split())
    commands = {
        "ab", "backfill", "dashboard", "demo", "evaluate", "forget", "import-events", "infra", "ingest",
        "loop", "publish", "sample-audio", "screenshots", "serve", "simulate", "tables", "token", "tune",
    }  # fmt: skip
    assert commands <= listed, commands - listed
    assert "report" in CliRunner().invoke(main, ["ab", "--help"]).output


@pytest.mark.parametrize(
    "args",
    [
        ["tune", "--alpha", "-1"],
        ["tune", "--rank", "0"],
        ["tune", "--rerank-weight", "2"],
        ["loop", "--days", "0"],
    ],
)
def test_out_of_range_options_are_refused_before_anything_runs(args: list[str]) -> None:
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 2 and "Invalid value" in done.output


def test_a_report_of_a_lake_that_never_served_says_so(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODREC_LAKE_URI", str(tmp_path / "lake"))
    done = CliRunner().invoke(main, ["ab", "report"])
    assert done.exit_code == 1 and "nothing to report: silver/user_events" in done.output
    assert "podrec loop" in done.output and "Traceback" not in done.output
