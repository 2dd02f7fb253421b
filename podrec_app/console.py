"""What a command shows a person, apart from what its machinery logs.

A command that runs Spark or Dagster prints its own lines on the terminal and sends everything else —
Dagster's event log at DEBUG, Spark's and the JVM's output — to a file under the data folder's
``logs/``, whose path it names: ``podrec demo``, ``evaluate``, ``tune`` and ``ingest`` alike.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from podrec.settings import PodrecSettings


def log_path(settings: PodrecSettings, command: str) -> Path:
    """``<data>/logs/<command>-<UTC time>.log``: one file per invocation, never appended to by another."""
    return settings.data.path / "logs" / f"{command}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.log"


class Console:
    """One line per stage on the terminal; everything else (Dagster, Spark) into ``log_path``."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.out: TextIO = sys.stdout

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Point file descriptors 1 and 2 at the log: Python's and the JVM's output alike."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        self.out = os.fdopen(os.dup(saved[0]), "w")
        with open(self.log_path, "a") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                for fd in saved:
                    os.close(fd)
                self.out.close()
                self.out = sys.stdout

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.say(f"  {name:<44} {time.perf_counter() - started:7.1f} s")
