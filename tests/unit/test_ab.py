"""Sticky A/B buckets: stable across processes, evenly split."""

import subprocess
import sys

import pytest

from podrec.recsys.ab import assign, bucket
from podrec.settings import AbSettings


def test_bucket_is_the_same_in_another_process_with_another_hash_seed() -> None:
    users = [f"user-{i}" for i in range(20)]
    here = [bucket(u, "exp-1") for u in users]
    code = f"from podrec.recsys.ab import bucket; print([bucket(u, 'exp-1') for u in {users!r}])"
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )  # fmt: skip
    assert other.stdout.strip() == str(here)


def test_a_known_bucket() -> None:
    # sha256("u1" + "exp") read as a big-endian integer from its first 8 bytes, mod 100.
    import hashlib

    expected = int.from_bytes(hashlib.sha256(b"u1exp").digest()[:8], "big") % 100
    assert bucket("u1", "exp") == expected


def test_ten_thousand_users_split_about_evenly() -> None:
    policy = AbSettings(experiment_id="exp-7", hybrid_buckets=50)
    hybrid = sum(assign(f"user-{i:05d}", policy)[1] == "hybrid" for i in range(10_000))
    assert 4_800 <= hybrid <= 5_200


def test_split_boundaries_and_experiment_salt() -> None:
    assert assign("anyone", AbSettings(hybrid_buckets=0))[1] == "als_only"
    assert assign("anyone", AbSettings(hybrid_buckets=100))[1] == "hybrid"
    moved = sum(bucket(f"u{i}", "a") != bucket(f"u{i}", "b") for i in range(1000))
    assert moved > 900  # a new experiment id reshuffles the buckets
    with pytest.raises(ValueError, match="hybrid_buckets"):
        AbSettings(hybrid_buckets=101)
