"""The collaborative and hybrid track on the real Spark + Delta, Kafka and Dagster machinery:
simulated listening → silver engagement → ALS → daily lists → offline evaluation."""

import json
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, RunsFilter, materialize
from pyspark.sql import functions as F

from podrec.ids import POPULAR_USER_PREFIX
from podrec.lake.delta import read as read_delta
from podrec.lake.paths import delta_rs_uri
from podrec.lake.schemas import TABLE_SCHEMAS
from podrec.lake.tables import CONTRACT_TABLES
from podrec.recsys.ab import assign
from podrec.recsys.engagement import engagement_scores
from podrec.serving.publish import active_version, collection
from podrec.settings import AbSettings, EngagementSettings
from podrec_assets.catalog import COLUMN_LINEAGE
from podrec_assets.definitions import build_definitions
from resources import MongoResource
from tests.conftest import assets, settings_env
from tests.integration.conftest import DAYS, END
from tests.integration.test_ingest import isolated
from tests.reads import declared_inputs

pytestmark = pytest.mark.integration
WRITTEN_HERE = {  # the tables the shared lake and the test below write
    "bronze/episodes", "bronze/user_events", "silver/episodes", "silver/transcripts", "silver/user_events",
    "silver/daily_engagement", "gold/episode_embeddings", "gold/episode_similarity", "gold/als_factors",
    "gold/recommendations",
}  # fmt: skip


def columns_of(uri: str) -> list[str]:
    from deltalake import DeltaTable

    return [field.name for field in DeltaTable(delta_rs_uri(uri)).schema().fields]


def test_daily_engagement_scores_every_listen_by_the_rules(lake, spark) -> None:
    resources = lake.resources
    table = read_delta(spark, resources["lake"].table("silver", "daily_engagement")).toPandas()
    assert sorted(table["event_date"].unique()) == DAYS
    assert not table.duplicated(["user_id", "episode_id", "event_date"]).any()
    rescored = engagement_scores(table.drop(columns=["engagement", "confidence"]), EngagementSettings())
    assert np.allclose(rescored["engagement"], table["engagement"])
    rules = EngagementSettings()
    early = table[table["early_skip"] & (table["max_completion"] < 0.05) & (table["listen_seconds"] < 600)]
    # Negatives that fade with the time heard: -1 after nothing, towards 0 at early_skip_max_s.
    fading = rules.early_skip_weight * (1 - early["listen_seconds"] / rules.early_skip_max_s)
    assert len(early) > 0 and (early["engagement"] < 0).all() and np.allclose(early["engagement"], fading)
    # completed: at least 0.95 (how far) + 1 (the completion bonus)
    assert (table.loc[table["max_completion"] >= 0.95, "engagement"] >= 1.95).all()


def test_recommendations_follow_the_rules_and_rerun_idempotently(lake, spark) -> None:
    resources, instance = lake.resources, lake.instance
    key = END.isoformat()
    gold_als_factors, gold_recommendations = assets(lake.settings, "gold/als_factors", "gold/recommendations")
    assert materialize([gold_als_factors, gold_recommendations], partition_key=key, resources=resources,
                       instance=instance).success  # fmt: skip
    uri = resources["lake"].table("gold", "recommendations")
    recs = read_delta(spark, uri).where(F.col("rec_date") == F.lit(END)).toPandas()
    people = recs[~recs["user_id"].str.startswith(POPULAR_USER_PREFIX)]
    engagement = read_delta(spark, resources["lake"].table("silver", "daily_engagement")).toPandas()
    catalog = (
        read_delta(spark, resources["lake"].table("silver", "episodes")).toPandas().set_index("episode_id")
    )
    finished = engagement[engagement["max_completion"] >= 0.95]
    finished_canonical = set(
        zip(finished["user_id"], catalog.loc[finished["episode_id"], "canonical_episode_id"], strict=True)
    )
    ab = AbSettings()
    for user_id, lst in people.groupby("user_id"):
        assert lst["rank"].tolist() == list(range(1, len(lst) + 1)) and len(lst) <= 10
        assert not lst["canonical_episode_id"].duplicated().any()
        assert catalog.loc[lst["episode_id"], "feed_id"].value_counts().max() <= 3
        assert not {(user_id, c) for c in lst["canonical_episode_id"]} & finished_canonical
        bucket, policy = assign(user_id, ab)
        assert set(lst["bucket"]) == {bucket} and set(lst["experiment_id"]) == {ab.experiment_id}
        assert set(lst["policy"]) <= {policy, "popular"}
        assert lst["reason"].str.len().min() > 0
    assert set(people["policy"]) >= {"hybrid", "als_only"}
    share_hybrid = people.groupby("user_id")["policy"].first().eq("hybrid").mean()
    assert 0.4 < share_hybrid < 0.6
    # Italian listeners are shown Italian variants of translated episodes when one exists.
    it_rows = people[people["locale"].str.startswith("it")]
    variants = catalog.groupby("canonical_episode_id")["language"].apply(set)
    has_it = it_rows["canonical_episode_id"].map(lambda c: "it" in variants[c])
    assert (catalog.loc[it_rows.loc[has_it, "episode_id"], "language"] == "it").all()
    popular = recs[recs["user_id"].str.startswith(POPULAR_USER_PREFIX)]
    assert {"en", "it"} <= {u.removeprefix(POPULAR_USER_PREFIX) for u in popular["user_id"]}

    # Re-running the day replaces its lists; fitting the day before adds a version beside it.
    assert materialize(
        [gold_recommendations], partition_key=key, resources=resources, instance=instance
    ).success
    again = read_delta(spark, uri).where(F.col("rec_date") == F.lit(END)).count()
    assert again == len(recs)
    day_before = (END - timedelta(days=1)).isoformat()
    assert materialize(
        [gold_als_factors], partition_key=day_before, resources=resources, instance=instance
    ).success
    factors = read_delta(spark, resources["lake"].table("gold", "als_factors"))
    versions = {
        r["model_date"]: r["model_version"]
        for r in factors.select("model_date", "model_version").distinct().collect()
    }
    assert set(versions) == {END, END - timedelta(days=1)} and len(set(versions.values())) == 2
    models = Path(resources["lake"].table("gold", "als_models"))
    assert {p.name for p in models.iterdir()} == {f"model_date={key}", f"model_date={day_before}"}

    # What Dagster's catalog shows of each table is what was written: the declared columns, in order,
    # and every upstream column the gold tables' lineage names.
    written = {t: columns_of(resources["lake"].table(*t.split("/"))) for t in WRITTEN_HERE}
    for table in WRITTEN_HERE & set(TABLE_SCHEMAS):
        assert written[table] == TABLE_SCHEMAS[table].names, table
    for table in WRITTEN_HERE & set(COLUMN_LINEAGE):
        for column, deps in COLUMN_LINEAGE[table].items():
            for source, name in deps:
                assert source not in written or name in written[source], (table, column, source, name)
    # ... and each gold write carries its lineage, which Dagster reads from the latest materialization.
    latest = instance.get_latest_materialization_event(AssetKey(["gold", "recommendations"]))
    lineage = latest.asset_materialization.metadata["dagster/column_lineage"].value
    assert set(lineage.deps_by_column) == set(COLUMN_LINEAGE["gold/recommendations"])


def test_the_days_lists_are_published_to_mongo(lake, spark) -> None:
    """After the lists test: gold.recommendations of END becomes the serving version in FerretDB."""
    resources, instance = lake.resources, lake.instance
    db = resources["mongo"].client()[f"serving_{uuid.uuid4().hex[:8]}"]
    mongo = MongoResource(uri=resources["mongo"].uri, database=db.name)
    (mongo_serving_version,) = assets(lake.settings, "mongo/serving_version")
    try:
        result = materialize(
            [mongo_serving_version], partition_key=END.isoformat(), resources={**resources, "mongo": mongo},
            instance=instance,
        )  # fmt: skip
        assert result.success
        version = active_version(db)
        recs = read_delta(spark, resources["lake"].table("gold", "recommendations")).where(
            F.col("rec_date") == F.lit(END)
        )
        served = db[collection("recommendations", version)]
        assert served.count_documents({}) == recs.select("user_id").distinct().count()
        assert served.find_one({"user_id": f"{POPULAR_USER_PREFIX}en", "fallback": True}) is not None
        doc = served.find_one({"fallback": False})
        assert [i["rank"] for i in doc["items"]] == list(range(1, len(doc["items"]) + 1))
        assert doc["bucket"] == assign(doc["user_id"], AbSettings())[0]
        # read by _id, with each item's variants on board (one lookup per API request)
        assert served.find_one({"_id": doc["user_id"]})["items"] == doc["items"]
        assert all(i["variants"] and i["canonical_episode_id"] for i in doc["items"])
        assert db[collection("episodes", version)].find_one({"variants.plays": {"$gt": 0}}) is not None
        variants = db[collection("episodes", version)].find_one({"variants.1": {"$exists": True}})
        assert variants is not None and len({v["language"] for v in variants["variants"]}) > 1
    finally:
        db.client.drop_database(db.name)


def test_evaluation_hybrid_wins_cold_start_without_losing_ndcg(lake, spark) -> None:
    resources, instance = lake.resources, lake.instance
    config = {"ops": {"gold__evaluation": {"config": {"protocols": ["stratified"]}}}}
    result = materialize(
        assets(lake.settings, "gold/evaluation"),
        partition_key=END.isoformat(),
        resources=resources,
        instance=instance,
        run_config=config,
    )
    assert result.success
    report = (
        result.get_asset_materialization_events()[0].materialization.metadata["report"].value["stratified"]
    )
    policies = report["policies"]
    assert set(policies) == {"hybrid", "als_only", "content_only", "popular", "random"}
    hybrid, als = policies["hybrid"], policies["als_only"]
    assert hybrid["cold_recall"] > als["cold_recall"]
    # docs/design.md's rule picks the strategy that serves: the best new-episode recall among those within
    # 2% NDCG@10 of als_only — and on this data one qualifies and finds new episodes als_only cannot.
    chosen = report["cold_start"][report["recommended_cold_start"]]
    assert chosen["ndcg"] >= 0.98 * als["ndcg"] and chosen["cold_recall"] > als["cold_recall"]
    assert als["ndcg"] > policies["random"]["ndcg"]
    assert set(report["cold_start"]) == {"factor", "literal", "reserved", "fixed"}
    rows = read_delta(spark, resources["lake"].table("gold", "evaluation")).toPandas()
    assert {"precision", "recall", "ndcg", "map", "hit_rate", "coverage", "novelty", "diversity",
            "cold_recall"} <= set(rows["metric"])  # fmt: skip


@pytest.mark.timeout(1200)  # three evaluations through Dagster, two of them building every day's engagement
def test_import_then_evaluate_on_a_fresh_lake(local_infra, settings, tmp_path: Path) -> None:
    """A ratings log in MovieLens's own columns, from 1998, through the two commands."""
    own = isolated(settings, tmp_path)
    rng = np.random.default_rng(7)
    users, items = 150, 120
    taste = rng.normal(size=(users, 4))
    traits = rng.normal(size=(items, 4))
    rows = []
    for u in range(users):
        liked = np.argsort(-(taste[u] @ traits.T) + rng.normal(scale=0.5, size=items))[:25]
        for rank_, i in enumerate(liked):
            rating = 5 if rank_ < 10 else 4 if rank_ < 18 else 2
            rows.append({"userId": u + 1, "movieId": int(i) + 1, "rating": rating,
                         "timestamp": 883_000_000 + int(rng.integers(0, 21 * 86_400))})  # fmt: skip
    path = tmp_path / "ratings.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    env = {**settings_env(own), "PODREC_KAFKA_EVENTS_TOPIC": own.kafka.events_topic,
           "PODREC_KAFKA_CONSUMER_GROUP": own.kafka.consumer_group, "DAGSTER_HOME": str(tmp_path / "dagster"),
           "PODREC_ALS_RANK": "8", "PODREC_ALS_ALPHA": "1"}  # fmt: skip
    (tmp_path / "dagster").mkdir()
    cli = [sys.executable, "-m", "podrec_app.cli"]
    subprocess.run([*cli, "import-events", str(path)], env=env, check=True, capture_output=True, timeout=300)
    out = subprocess.run([*cli, "evaluate", "--protocol", "stratified", "--k", "10", "--json"], env=env,
                         capture_output=True, text=True, timeout=900)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    # The person sees one line on stderr: where Dagster's event log and Spark's output went.
    (said,) = out.stderr.strip().splitlines()
    log = Path(said.removeprefix("Dagster's and Spark's log: "))
    assert log.parent == own.data.path / "logs" and "RUN_SUCCESS" in log.read_text()
    report = json.loads(out.stdout)
    assert report["protocol"] == "stratified" and report["k"] == 10 and report["users"] > 100
    policies = report["policies"]
    for name in ("hybrid", "als_only", "popular", "random"):
        assert 0.0 <= policies[name]["ndcg"] <= 1.0 and 0.0 <= policies[name]["precision"] <= 1.0
    assert policies["als_only"]["ndcg"] > 2 * policies["random"]["ndcg"]
    assert policies["content_only"]["ndcg"] is None and report["notes"]  # no transcripts for movies

    # Again on the same lake: what is built and checked is not built again, the evaluation runs.
    published = ["evaluate", "--protocol", "published", "--k", "10", "--no-ingest", "--json"]
    again = subprocess.run([*cli, *published], env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout[again.stdout.index("{") :])["protocol"] == "published"
    with DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        assert len(instance.get_runs(RunsFilter(job_name="engagement"))) == 1
        assert len(instance.get_runs(RunsFilter(job_name="evaluation"))) == 2
    # Other engagement weights make every day's engagement out of date: it is built again.
    reweighted = {**env, "PODREC_ENGAGEMENT_TIME_WEIGHT": "0.5"}
    third = subprocess.run([*cli, *published], env=reweighted, capture_output=True, text=True, timeout=900)
    assert third.returncode == 0, third.stderr[-3000:]
    with DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        assert len(instance.get_runs(RunsFilter(job_name="engagement"))) == 2


def test_a_released_fit_leaves_nothing_cached_in_the_session(spark) -> None:
    """A long-lived session fits a model a day (and tuning a grid of them): each fit's factor RDDs,
    which ALS persists itself, must go when the fit is released, or executor memory grows each day."""
    from podrec.recsys.als import fit
    from podrec.settings import AlsSettings

    rng = np.random.default_rng(3)
    ratings = spark.createDataFrame(
        [(f"u{u}", f"e{e}", float(r)) for u, e, r in rng.integers(1, 40, size=(600, 3))],
        "user_id string, episode_id string, rating double",
    )
    baseline = set(dict(spark.sparkContext._jsc.getPersistentRDDs().items()))
    for _ in range(2):
        fitted = fit(ratings, AlsSettings(rank=4, max_iter=2))
        assert fitted.user_factors().count() > 0 and fitted.item_factors().count() > 0
        assert {rdd.name() for rdd in fitted.factor_rdds} == {"userFactors", "itemFactors"}
        fitted.release()
        assert set(dict(spark.sparkContext._jsc.getPersistentRDDs().items())) == baseline


def test_each_asset_reads_exactly_the_tables_it_declares(lake) -> None:
    """Every asset materialized in this process so far — the shared lake's, and the gold wing's in the
    tests above — read exactly the lake tables its declared dependencies name: none read undeclared
    (Dagster would schedule it before its input), none declared unread (it would wait for nothing)."""
    defs, tables = build_definitions(lake.settings), set(CONTRACT_TABLES)
    # What ran: every asset that read something, and every one the shared lake's instance materialized
    # (bronze/episodes reads no table: its input is the episode source).
    ran = set(lake.reads.reads) | {key.to_user_string() for key in lake.instance.get_asset_keys()}
    shared_lake = {"bronze/episodes", "silver/episodes", "silver/transcripts", "gold/episode_embeddings",
                   "gold/episode_similarity", "silver/user_events", "silver/daily_engagement"}  # fmt: skip
    assert shared_lake <= ran
    compared = {table: (lake.reads.inputs(table), declared_inputs(defs, table, tables)) for table in ran}
    differ = {
        t: {"read": sorted(r), "declared": sorted(d)} for t, (r, d) in sorted(compared.items()) if r != d
    }
    assert not differ, json.dumps(differ, indent=1)
