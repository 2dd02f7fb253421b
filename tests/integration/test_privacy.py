"""Forgetting a listener and the event retention, on a small real lake (Spark-written Delta tables, a
fitted ALS pipeline, a FerretDB publish), through the command line a person would use."""

import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from dagster import materialize
from deltalake import DeltaTable

from podrec.ingest.importer import check_log, read_log, rejected_rows
from podrec.lake.delta import insert_new_arrow
from podrec.privacy import AUDIT, _carries, lake_tables, user_hash
from podrec.serving.publish import POINTER, active_version, collection
from resources import MongoResource
from tests.conftest import assets, settings_env
from tests.integration.conftest import DAYS, END

pytestmark = pytest.mark.integration


def mentions(value: Any, user_id: str) -> bool:
    """Does a cell (string, bytes, list or struct, nested) carry ``user_id`` as a whole token?"""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        return _carries(value, user_id)
    if isinstance(value, dict):
        return any(mentions(v, user_id) for v in value.values())
    if isinstance(value, list | tuple):
        return any(mentions(v, user_id) for v in value)
    return False


def lake_hits(root: str, user_id: str) -> dict[str, int]:
    """Rows carrying the id, per Delta table, in every table under the lake (read whole)."""
    hits = {}
    for layer, name in lake_tables(root):
        rows = DeltaTable(f"{root}/{layer}/{name}").to_pyarrow_table().to_pylist()
        hits[f"{layer}.{name}"] = sum(mentions(row, user_id) for row in rows)
    return hits


def model_hits(root: str, user_id: str, index_of: dict[str, int]) -> dict[str, int]:
    """Per saved model: label cells carrying the id, and factor rows at the index the id had."""
    hits = {}
    for model in sorted(Path(root, "gold", "als_models").iterdir()):
        found = 0
        for part in model.rglob("*.parquet"):
            rows = pq.read_table(part).to_pylist()
            found += sum(mentions(row, user_id) for row in rows)
            if part.parent.name == "userFactors":
                found += sum(row["id"] == index_of[model.name] for row in rows)
        hits[model.name] = found
    return hits


def user_index(root: str, user_id: str) -> dict[str, int]:
    """The listener's index in each saved model's id table (``users/``: user_id, user_idx)."""
    out = {}
    for model in Path(root, "gold", "als_models").iterdir():
        ids = pq.read_table(model / "users").to_pylist()
        (out[model.name],) = [row["user_idx"] for row in ids if row["user_id"] == user_id]
    return out


@pytest.fixture(scope="module")
def served(lake, spark, tmp_path_factory: pytest.TempPathFactory):
    """A copy of the shared lake with two days' models, END's lists, and END's lists published."""
    root = tmp_path_factory.mktemp("privacy") / "lake"
    shutil.copytree(lake.settings.lake.root, root)
    own = lake.settings.with_(lake={"uri": str(root)})
    resources = dict(lake.resources)
    resources["lake"] = type(resources["lake"])(root=str(root))
    db = resources["mongo"].client()[f"forget_{uuid.uuid4().hex[:8]}"]
    resources["mongo"] = MongoResource(uri=resources["mongo"].uri, database=db.name)
    als, recs, publish = assets(own, "gold/als_factors", "gold/recommendations", "mongo/serving_version")
    day_before = (END - timedelta(days=1)).isoformat()
    assert materialize([als], partition_key=day_before, resources=resources, instance=lake.instance).success
    key = END.isoformat()
    assert materialize([als, recs], partition_key=key, resources=resources, instance=lake.instance).success
    for _ in range(2):  # two published versions: one active, one standby
        assert materialize([publish], partition_key=key, resources=resources, instance=lake.instance).success
    yield own, resources, db
    db.client.drop_database(db.name)


def test_forget_removes_a_listener_from_every_table_model_and_version(served, settings, spark) -> None:
    from pyspark.ml.recommendation import ALSModel

    own, _, db = served
    root = own.lake.root
    recs = DeltaTable(f"{root}/gold/recommendations").to_pandas()
    user = sorted(set(recs["user_id"]) - {u for u in recs["user_id"] if u.startswith("__")})[0]
    neighbour = f"{user}0"  # an id that starts like theirs must be kept
    log = Path(root).parent / "bad.csv"
    log.write_text(f"user,item,ts,event_type\n{user},e1,not-a-time,play\n{neighbour},e1,,play\n")
    insert_new_arrow(rejected_rows(check_log(*read_log(log)), log.name, datetime.now(UTC)),
                     f"{root}/bronze/user_events_rejected", ["kafka_partition", "kafka_offset", "error"],
                     "event_date")  # fmt: skip
    index_of = user_index(root, user)
    model_uri = f"{root}/gold/als_models/model_date={END.isoformat()}"
    users_before = ALSModel.load(f"{model_uri}/als").userFactors.count()
    before = lake_hits(root, user)
    holders = ("bronze.user_events", "bronze.user_events_rejected", "silver.user_events",
               "silver.daily_engagement", "gold.recommendations", "gold.als_factors")  # fmt: skip
    assert all(before[t] > 0 for t in holders)
    assert all(n > 0 for n in model_hits(root, user, index_of).values())
    versions = [name for name in db.list_collection_names() if name.startswith("recommendations__")]
    assert len(versions) == 2 and all(db[v].find_one({"_id": user}) for v in versions)
    since = db[POINTER].find_one({"_id": "active"})["since"]
    kept_neighbour = lake_hits(root, neighbour)["bronze.user_events_rejected"]

    env = settings_env(settings) | {"PODREC_LAKE_URI": root, "PODREC_MONGO_DATABASE": db.name}
    done = subprocess.run([sys.executable, "-m", "podrec_app.cli", "forget", user], env=env,
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    print(done.stdout)

    after = lake_hits(root, user)
    assert after == dict.fromkeys(after, 0), after  # no row anywhere carries the id
    assert set(model_hits(root, user, index_of).values()) == {0}
    # Still a model Spark loads, one listener short, and the id table no longer knows them.
    assert ALSModel.load(f"{model_uri}/als").userFactors.count() == users_before - 1
    assert user not in {row["user_id"] for row in pq.read_table(f"{model_uri}/users").to_pylist()}
    assert all(db[v].find_one({"_id": user}) is None and db[v].count_documents({}) > 0 for v in versions)
    assert db[POINTER].find_one({"_id": "active"})["since"] > since  # the API drops its cache
    assert lake_hits(root, neighbour)["bronze.user_events_rejected"] == kept_neighbour == 1
    audit = DeltaTable(f"{root}/{'/'.join(AUDIT)}").to_pandas()
    assert set(audit["user_sha256"]) == {user_hash(user)} and len(set(audit["forget_id"])) == 1
    removed = dict(zip(audit["target"], audit["removed"], strict=True))
    for table, n in before.items():
        assert removed.get(table, 0) == n, table
    assert removed[f"mongo.{collection('recommendations', active_version(db))}"] == 1
    assert not any(mentions(row, user) for row in audit.to_dict("records"))
    # A second forget finds nothing more, and says so in its own audit rows.
    again = subprocess.run([sys.executable, "-m", "podrec_app.cli", "forget", user], env=env,
                           capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr
    audit_again = DeltaTable(f"{root}/{'/'.join(AUDIT)}").to_pandas()
    latest = audit_again[~audit_again["forget_id"].isin(set(audit["forget_id"]))]
    assert len(latest) == len(audit) and latest["removed"].sum() == 0


def test_retention_deletes_only_days_before_the_cutoff(served) -> None:
    own, resources, _ = served
    root = own.lake.root
    tables = ("bronze/user_events", "silver/user_events", "silver/daily_engagement")

    def per_day(table: str) -> dict:
        return DeltaTable(f"{root}/{table}").to_pandas()["event_date"].value_counts().to_dict()

    before = {t: per_day(t) for t in tables}
    models_before = sorted(p.name for p in Path(root, "gold", "als_models").iterdir())
    keep = 3  # END and the two days before it; lists, factors and models: END alone
    rules = {"event_days": keep, "derived_days": 1}
    (retention,) = assets(own.with_(retention=rules), "monitoring/retention")
    result = materialize([retention], partition_key=END.isoformat(), resources=resources)
    assert result.success
    cutoff = END - timedelta(days=keep - 1)
    for table in tables:
        after = per_day(table)
        assert set(after) == {d for d in before[table] if d >= cutoff}, table
        assert all(after[d] == before[table][d] for d in after), table  # kept days untouched
    report = DeltaTable(f"{root}/monitoring/retention").to_pandas().set_index("table")["rows_removed"]
    assert report["bronze.user_events"] == sum(
        n for d, n in before["bronze/user_events"].items() if d < cutoff
    )
    assert report["bronze.user_events"] > 0 and min(DAYS) < cutoff
    # Every table keyed by listener is trimmed: the lists, factors and saved models of END - 1 go.
    assert models_before == [f"model_date={END - timedelta(days=1)}", f"model_date={END}"]
    assert sorted(p.name for p in Path(root, "gold", "als_models").iterdir()) == [f"model_date={END}"]
    factors = DeltaTable(f"{root}/gold/als_factors").to_pandas()
    assert set(factors["model_date"]) == {END} and report["gold.als_factors"] > 0
    assert report["gold.als_models"] == 1
