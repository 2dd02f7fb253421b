"""The real Dagster machinery: definitions, materializations on Spark + Delta, the webserver."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from itertools import pairwise
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, Definitions, materialize

from podrec.lake.duck import open_lake
from podrec.settings import load_settings
from podrec_assets.definitions import build_definitions
from resources import build_resources
from tests.conftest import assets, free_port, settings_env

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_definitions_load_and_validate() -> None:
    defs = build_definitions(load_settings())
    Definitions.validate_loadable(defs)
    assert AssetKey(["bronze", "episodes"]) in {s.key for s in defs.resolve_all_asset_specs()}
    assert defs.resolve_job_def("bronze_daily") is not None


def test_bronze_episodes_materializes_idempotently(spark, settings) -> None:
    from checks.expectation_checks import table_check
    from podrec.quality.suites import suite
    from podrec_assets.calendar import Calendar

    resources = build_resources(settings)
    bronze_episodes, checks = (
        assets(settings, "bronze/episodes")[0],
        table_check(suite("bronze/episodes"), settings, Calendar.from_settings(settings).daily),
    )
    instance = DagsterInstance.ephemeral()
    counts = []
    for _ in range(2):
        result = materialize(
            [bronze_episodes, checks],
            partition_key="2026-11-20",
            resources=resources,
            instance=instance,
        )
        assert result.success
        meta = result.asset_materializations_for_node("bronze__episodes")[0].metadata
        counts.append(meta["dagster/row_count"].value)
        outcome = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
        assert outcome == dict.fromkeys(["schema", "not_null", "ranges", "unique_keys", "has_rows"], True)
    assert counts[0] == counts[1] > 100

    con = open_lake(resources["lake"].root, {"episodes": ("bronze", "episodes")}).con
    (n, days, langs) = con.execute(
        "SELECT count(*), count(DISTINCT ingest_date), count(DISTINCT language) FROM episodes"
    ).fetchone()
    assert (n, days) == (counts[0], 1)  # the re-run replaced the day, it did not append
    assert langs >= 7


def test_webserver_serves_and_stops_cleanly(settings, tmp_path: Path) -> None:
    port = free_port()
    env = settings_env(settings) | {"DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-w", "workspace.yaml",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
        # A non-interactive parent may leave SIGINT ignored; the webserver must hear it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        info = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as r:
                    info = json.load(r)
                break
            except OSError:
                time.sleep(0.5)
        assert info is not None, proc.stdout.read().decode() if proc.poll() is not None else "timeout"
        assert "dagster_webserver_version" in info
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("the webserver did not stop on SIGINT")
    assert proc.returncode in (0, -signal.SIGINT)


def test_simulate_then_ingest_through_dagster(local_infra, spark, settings, tmp_path: Path) -> None:
    """A day simulated into Kafka and ingested by the assets; re-simulating the day adds nothing."""
    from dagster import RunConfig

    from podrec_assets.bronze import SimulationConfig
    from tests.integration.test_ingest import isolated

    own = isolated(settings, tmp_path)
    resources = build_resources(own)
    simulated_events, bronze_user_events = assets(own, "kafka/simulated_events", "bronze/user_events")
    instance = DagsterInstance.ephemeral()
    sim_config = RunConfig({"kafka__simulated_events": SimulationConfig(users=40, seed=9)})

    def simulate_day():
        result = materialize(
            [simulated_events], partition_key="2026-11-21", resources=resources,
            instance=instance, run_config=sim_config,
        )  # fmt: skip
        return result.asset_materializations_for_node("kafka__simulated_events")[0].metadata["events"].value

    def ingest_new():
        result = materialize([bronze_user_events], resources=resources, instance=instance)
        by_key = {}
        for event in result.get_asset_materialization_events():
            mat = event.event_specific_data.materialization
            by_key[mat.asset_key.path[-1]] = mat.metadata
        accepted = by_key["user_events"]["dagster/row_count"].value
        return accepted, by_key["user_events_rejected"]["dagster/row_count"].value

    sent = simulate_day()
    assert sent > 0
    assert ingest_new() == (sent, 0)
    assert simulate_day() == sent  # the same seed and day: the same events and event ids
    assert ingest_new() == (0, sent)  # …which ingestion keeps out as duplicates


def test_silver_episodes_groups_language_variants(spark, settings, tmp_path: Path) -> None:
    from tests.integration.test_ingest import isolated

    own = isolated(settings, tmp_path)
    resources = build_resources(own)
    bronze_episodes, silver_episodes = assets(own, "bronze/episodes", "silver/episodes")
    instance = DagsterInstance.ephemeral()
    for day in ("2026-11-10", "2026-11-20"):
        assert materialize(
            [bronze_episodes], partition_key=day, resources=resources, instance=instance
        ).success
    for _ in range(2):  # a re-run rebuilds the same catalog
        result = materialize([silver_episodes], resources=resources, instance=instance)
        assert result.success
        silver = spark.read.format("delta").load(resources["lake"].table("silver", "episodes"))
        rows = {r.episode_id: r for r in silver.collect()}
        assert len(rows) == silver.count()  # one row per episode
        # Deep Tech Weekly's first episode and its Italian edition share one canonical id.
        assert rows["70000001"].canonical_episode_id == rows["70000011"].canonical_episode_id == "70000001"
        # Seen on the 10th and again on the 20th: first seen on the 10th, latest snapshot kept.
        assert str(rows["70000001"].first_seen_date) == "2026-11-10"
        assert str(rows["70000001"].ingest_date) == "2026-11-20"
        groups = silver.groupBy("canonical_episode_id").count()
        assert groups.where("count > 2").count() == 0
        meta = result.asset_materializations_for_node("silver__episodes")[0].metadata
        assert meta["episodes_with_variants"].value == groups.where("count = 2").count() > 0


def test_silver_transcripts_is_incremental(spark, settings, tmp_path: Path) -> None:
    from pyspark.sql import functions as F

    from podrec.content.podcastindex import sample_catalog_rows
    from podrec.content.sample_audio import generate
    from tests.integration.test_ingest import isolated

    own = isolated(settings, tmp_path).with_(data={"dir": str(tmp_path / "data")})
    resources = build_resources(own)
    catalog_assets = assets(own, "bronze/episodes", "silver/episodes")
    (silver_transcripts,) = assets(own, "silver/transcripts")
    korean = [r for r in sample_catalog_rows() if r["language"] == "ko"][:4]
    generate(korean[:3], own.data.audio_path)
    # The fourth has corrupt audio in the cache: recorded, and the run goes on.
    (own.data.audio_path / f"{korean[3]['episode_id']}.mp3").write_bytes(b"ID3 not audio" * 100)
    instance = DagsterInstance.ephemeral()
    assert materialize(
        catalog_assets, partition_key="2026-11-20", resources=resources, instance=instance
    ).success

    def run() -> dict:
        result = materialize([silver_transcripts], resources=resources, instance=instance)
        return {
            k: v.value
            for k, v in result.asset_materializations_for_node("silver__transcripts")[0].metadata.items()
        }

    first = run()
    table = spark.read.format("delta").load(resources["lake"].table("silver", "transcripts"))
    episodes = spark.read.format("delta").load(resources["lake"].table("silver", "episodes")).count()
    assert table.count() == table.select("episode_id").distinct().count() == episodes
    assert first["sources"]["vosk"] == 3
    vosk_ids = {r.episode_id for r in table.where("source = 'vosk'").collect()}
    assert vosk_ids == {r["episode_id"] for r in korean[:3]}
    (broken,) = table.where(F.col("episode_id") == korean[3]["episode_id"]).collect()
    assert broken.source == "description" and broken.problems[0].startswith("vosk: cannot decode")
    assert table.where("source = 'description' AND size(problems) = 0").count() > 0
    second = run()
    assert (second["transcribed"], second["status"], second["skipped_already_done"]) == (
        0,
        "cached",
        episodes,
    )


def test_embeddings_are_incremental_and_similarity_skips_variants(spark, settings, tmp_path: Path) -> None:
    from tests.integration.test_ingest import isolated

    own = isolated(settings, tmp_path).with_(data={"dir": str(tmp_path / "data")})
    resources = build_resources(own)
    instance = DagsterInstance.ephemeral()
    upstream = assets(own, "bronze/episodes", "silver/episodes", "silver/transcripts")
    gold_episode_embeddings, gold_episode_similarity = assets(
        own, "gold/episode_embeddings", "gold/episode_similarity"
    )
    assert materialize(upstream, partition_key="2026-11-20", resources=resources, instance=instance).success

    def embed() -> dict:
        result = materialize([gold_episode_embeddings], resources=resources, instance=instance)
        meta = result.asset_materializations_for_node("gold__episode_embeddings")[0].metadata
        return {k: v.value for k, v in meta.items()}

    first = embed()
    episodes = spark.read.format("delta").load(resources["lake"].table("silver", "episodes"))
    assert first["embedded"] == episodes.count() > 100
    second = embed()
    assert (second["embedded"], second["status"]) == (0, "cached")

    assert materialize([gold_episode_similarity], resources=resources, instance=instance).success
    sim = spark.read.format("delta").load(resources["lake"].table("gold", "episode_similarity"))
    canon = {r.episode_id: r.canonical_episode_id for r in episodes.collect()}
    lists: dict[str, list] = {}
    for r in sim.orderBy("episode_id", "rank").collect():
        lists.setdefault(r.episode_id, []).append(r)
    assert len(lists) == len(canon)
    for episode_id, neighbours in lists.items():
        assert [n.rank for n in neighbours] == list(range(1, len(neighbours) + 1))
        groups = [canon[n.neighbor_episode_id] for n in neighbours]
        assert canon[episode_id] not in groups and len(set(groups)) == len(groups)
        assert all(a.similarity >= b.similarity for a, b in pairwise(neighbours))
    # Content carries meaning: the nearest neighbour of a tech episode is mostly tech.
    tech = {e for e, c in canon.items() if e.startswith("700000") and int(e) <= 70000020}
    nearest = [lists[e][0].neighbor_episode_id for e in tech]
    assert sum(n in tech or int(n) in range(70000069, 70000077) for n in nearest) >= len(tech) // 2
