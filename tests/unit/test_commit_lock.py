"""The commit lock's rules that need no PostgreSQL: which tables share a key, that a local lake never
locks (or connects), and that a writer to an object store without a lock configured is refused. The
lock itself, on a real PostgreSQL: tests/integration/test_commit_lock.py."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from podrec.lake import commit_lock
from podrec.lake.commit_lock import CommitLockError, committing, lock_key
from podrec.lake.delta import append_arrow
from podrec.lake.object_store import use_object_store
from podrec.settings import LakeSettings, load_settings
from podrec_app.localinfra import free_port


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a process that has not configured its lock yet."""
    monkeypatch.setattr(commit_lock, "_process", {})


def test_one_table_has_one_key_however_it_is_named_and_tables_differ() -> None:
    key = lock_key("s3a://podrec/lakehouse/bronze/user_events")
    assert key == lock_key("s3://podrec/lakehouse/bronze/user_events/")  # delta-rs' name for it
    assert key != lock_key("s3a://podrec/lakehouse/bronze/user_events_rejected")
    assert -(2**63) <= key < 2**63  # PostgreSQL's bigint


def test_a_local_lake_never_connects_to_the_lock(tmp_path: Path) -> None:
    # A lock nothing listens at: a local write that tried to take it would fail.
    use_object_store(
        LakeSettings(uri=str(tmp_path), commit_lock=f"postgresql://u:pw@127.0.0.1:{free_port()}/p")
    )
    written = append_arrow(pd.DataFrame({"x": [1, 2]}), str(tmp_path / "bronze" / "t"))
    assert (written.version, written.rows_written) == (0, 2)


def test_an_object_store_write_in_a_process_that_never_configured_its_lock_is_refused() -> None:
    with (
        pytest.raises(CommitLockError, match=r"s3a://b/lake/bronze/t: .*use_object_store"),
        committing("s3a://b/lake/bronze/t"),
    ):
        pytest.fail("the write ran")


def test_an_object_store_lake_without_the_setting_leaves_commits_to_the_deployment() -> None:
    use_object_store(LakeSettings(uri="s3a://b/lake"))
    with committing("s3a://b/lake/bronze/t"):
        pass  # no lock taken, no connection made


def test_an_unreachable_lock_names_the_table_and_hides_the_password() -> None:
    port = free_port()
    use_object_store(
        LakeSettings(uri="s3a://b/lake", commit_lock=f"postgresql://u:hunter2@127.0.0.1:{port}/p")
    )
    with pytest.raises(CommitLockError) as failed, committing("s3a://b/lake/silver/user_events"):
        pytest.fail("the write ran without its lock")
    message = str(failed.value)
    assert "s3a://b/lake/silver/user_events" in message and "hunter2" not in message
    assert f"postgresql://***@127.0.0.1:{port}/p" in message and "PODREC_LAKE_COMMIT_LOCK" in message


def test_the_cluster_profile_locks_in_its_own_postgresql_with_its_minted_login(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PODREC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PODREC_POSTGRES_PORT", "56543")
    for var in ("PODREC_SECRETS_DIR", "PODREC_MONGO_URI", "PODREC_LAKE_COMMIT_LOCK", "PODREC_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings(profile="cluster")
    password = (tmp_path / "data" / "secrets" / "PODREC_MONGO_URI").read_text().split(":")[2].split("@")[0]
    assert s.lake.commit_lock is not None
    assert s.lake.commit_lock.get_secret_value() == f"postgresql://podrec:{password}@127.0.0.1:56543/postgres"
    assert s.public_view()["lake"]["commit_lock"] == "postgresql://***@127.0.0.1:56543/postgres"
    assert password not in str(s.public_view())
    # An operator's own lock wins; the local profile has none.
    monkeypatch.setenv("PODREC_LAKE_COMMIT_LOCK", "postgresql://ops:pw@db.example:5432/locks")
    own = load_settings(profile="cluster").lake.commit_lock
    assert own is not None and own.get_secret_value() == "postgresql://ops:pw@db.example:5432/locks"
    monkeypatch.delenv("PODREC_LAKE_COMMIT_LOCK")
    assert load_settings(profile="local").lake.commit_lock is None
