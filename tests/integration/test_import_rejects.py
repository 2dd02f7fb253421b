"""An imported log with good and bad rows: every row ends as an accepted event or a rejected record with
its reason, on the real broker and Delta; a second import adds no rejected row twice."""

import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from podrec.ingest.importer import IMPORT_PARTITION
from tests.conftest import settings_env
from tests.integration.test_ingest import isolated, run_ingest, tables

pytestmark = pytest.mark.integration

BAD = {
    ",e1,2026-11-20T08:00:00Z,play": "missing user id",
    "u1,nan,2026-11-20T08:00:00Z,play": "missing item id",
    "u1,e1,,play": "missing timestamp",
    "u1,e1,the day before,play": "unparsable timestamp: 'the day before'",
    "u1,e1,2026-11-20T08:00:00Z,": "missing event_type",
    "u1,e1,2026-11-20T08:00:00Z,play,extra": "5 fields where the header has 4",
}


def test_good_and_bad_rows_are_all_accounted_for(local_infra, spark, settings, tmp_path: Path) -> None:
    s = isolated(settings, tmp_path)
    good = [f"u{i % 7},e{i % 5},2026-11-20T{8 + i // 60:02d}:{i % 60:02d}:00Z,play" for i in range(40)]
    teleport = "u2,e2,2026-11-20T07:00:00Z,teleport"  # sent: ingestion rejects the unknown type
    rows = [*good, *BAD, teleport]
    log = tmp_path / "log.csv"
    log.write_text("user_id,episode_id,occurred_at,event_type\n" + "\n".join(rows) + "\n")
    env = settings_env(s) | {"PODREC_KAFKA_EVENTS_TOPIC": s.kafka.events_topic}
    cmd = [sys.executable, "-m", "podrec_app.cli", "import-events", str(log)]

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f"rejected {len(BAD)} of {len(rows)} rows" in done.stdout
    report = run_ingest(spark, s)
    accepted, rejected = tables(spark, s)
    print(f"rows {len(rows)}: accepted {accepted.count()}, rejected {rejected.count()} "
          f"(import {len(BAD)}, ingestion {report.rejected})")  # fmt: skip
    assert accepted.count() + rejected.count() == len(rows)
    assert accepted.count() == len(good)
    imported = {
        r.raw_text: r.error for r in rejected.where(F.col("kafka_partition") == IMPORT_PARTITION).collect()
    }
    assert {raw: error.split(" (imported")[0] for raw, error in imported.items()} == BAD
    assert all(
        error.endswith(f"(imported from log.csv, row {rows.index(raw) + 1})")
        for raw, error in imported.items()
    )
    (kafka_reject,) = rejected.where(F.col("kafka_partition") != IMPORT_PARTITION).collect()
    assert kafka_reject.error.startswith("unknown event_type")

    # Again: the events come back as duplicates (rejected by ingestion), the bad rows are not added twice.
    assert subprocess.run(cmd, env=env, capture_output=True, check=False).returncode == 0
    run_ingest(spark, s)
    accepted, rejected = tables(spark, s)
    assert accepted.count() == len(good)
    assert rejected.where(F.col("kafka_partition") == IMPORT_PARTITION).count() == len(BAD)
