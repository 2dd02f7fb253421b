"""Forgetting a listener for good, and keeping what podrec holds about listeners no longer than the retention.

``forget`` first adds the listener to the suppression list (``monitoring.suppressed_listeners``: the
SHA-256 of the id, never the id), then removes them from everything podrec keeps about them:
- every Delta table of the lake with a ``user_id`` column (bronze, silver and gold events, engagement,
  lists — found by looking, so a table added later is covered too), the user side of
  ``gold.als_factors``, and the records of ``bronze.user_events_rejected`` whose raw text carries the
  id as a whole token;
- the listener's factors in every saved ALS model (``gold/als_models/model_date=…``): their rows are
  deleted by id, and in a fitted pipeline their label in the user indexer is replaced by a
  placeholder, so every other listener keeps their index;
- their lists in every published version the serving store still holds (active, standby, older).
  Serving caches documents per active version, so when the active version changed the pointer's
  ``since`` is touched: the API drops its cache, as after a re-activation.
Then it appends to ``monitoring.forget_audit`` what was removed where — counts, and the id only as a
SHA-256 hash. The store is asked first, so a store that is away stops the forget before the lake is
touched; a forget that fails half-way can be run again (deleting what is gone deletes nothing).

The suppression list is what makes forgetting final: every door a listener could come back through
honours it — ingestion rejects their records (reason "forgotten listener", raw bytes not kept), so a
late event, a replay of the topic or an imported log cannot bring them back; the silver and gold writes
and the publish leave them out (``Suppression.guard``), and a run that was already in flight when they
were forgotten deletes, right after its write, whatever of theirs it wrote. The list holds one 64-byte
hash per forgotten listener and is read whole by those doors: 10⁵ forgotten listeners are ~7 MB.

Deleted rows remain in the tables' older Delta versions (time travel) until ``VACUUM`` removes those
files (weekly, by monitoring/lake_maintenance: podrec/lake/maintenance.py); records on the Kafka topic
stay until the topic's own retention (docs/operations.md, Privacy).

``retention_cutoff``/``delete_listener_rows_before`` implement the retention: every table keyed by
listener (``LISTENER_TABLES``) loses the rows dated before its cutoff — events and impressions after
``retention.event_days``, lists and factors after ``retention.derived_days`` — and saved models older
than the latter are deleted whole.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from podrec.ids import FORGOTTEN_PREFIX, POPULAR_USER_PREFIX, id_error
from podrec.lake.delta import append_arrow, columns, delete_rows, delete_where, insert_new_arrow, sql_string
from podrec.lake.paths import arrow_uri, delta_rs_uri, table_uri

if TYPE_CHECKING:
    import pyarrow as pa
    from pyarrow.fs import FileSystem
    from pymongo.database import Database
    from pyspark.sql import Column, DataFrame, SparkSession


class ForgetError(ValueError):
    """A forget that cannot go ahead (an id no door would ever have let in); nothing was touched."""


MODELS = ("gold", "als_models")
AUDIT = ("monitoring", "forget_audit")
SUPPRESSED = ("monitoring", "suppressed_listeners")
# Every table that holds listeners (by user_id, by the user side of the factors, or in raw records),
# with the date column the retention trims it by. A test holds this to the schemas.
LISTENER_TABLES: dict[tuple[str, str], str] = {
    ("bronze", "user_events"): "event_date",
    ("bronze", "user_events_rejected"): "event_date",
    ("bronze", "impressions"): "event_date",
    ("bronze", "impressions_rejected"): "event_date",
    ("silver", "user_events"): "event_date",
    ("silver", "daily_engagement"): "event_date",
    ("silver", "impressions"): "event_date",
    ("gold", "als_factors"): "model_date",
    ("gold", "recommendations"): "rec_date",
    ("silver", "flagged_listeners"): "flag_date",  # by the id's hash: podrec/recsys/bursts.py
}
# Kept for ``retention.event_days``; the other listener tables (derived: lists, factors, models) for
# ``retention.derived_days``.
EVENT_DATE = "event_date"
FORGOTTEN = "forgotten listener"  # the reason ingestion gives a forgotten listener's records
_ID_CHARS = r"A-Za-z0-9_.:@-"


def user_hash(user_id: str) -> str:
    """What the audit keeps instead of the id: enough to answer "was X forgotten?", not to list anyone."""
    # surrogatepass: a text no UTF-8 can hold (a lone surrogate) still hashes; no valid id is one.
    return hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()


def masked_id(user_id: Any) -> str:
    """A listener id as it may appear in logs and metadata: a short hash, joinable to the audit's
    ``user_sha256`` by its prefix; podrec's own keys (the popular lists) stay readable."""
    text = str(user_id)
    return text if text.startswith(POPULAR_USER_PREFIX) else f"sha256:{user_hash(text)[:12]}"


def masked_listeners(frame: Any) -> Any:
    """A pandas preview fit for metadata: ``user_id`` as ``masked_id``, and no reasons or raw records
    (a reason quotes an episode the listener heard)."""
    out = frame.drop(columns=[c for c in ("reason", "raw", "raw_text") if c in frame.columns])
    if "user_id" in out.columns:
        out = out.assign(user_id=out["user_id"].map(masked_id))
    return out


@dataclass(frozen=True)
class Suppression:
    """The forgotten listeners of a lake, as hashes: what every door checks before letting one in."""

    lake_root: str

    @property
    def uri(self) -> str:
        return table_uri(self.lake_root, *SUPPRESSED)

    def add(self, user_id: str, when: datetime) -> None:
        """Suppress ``user_id`` from now on (adding one twice keeps one row)."""
        import pandas as pd

        frame = pd.DataFrame(
            {
                "user_sha256": [user_hash(user_id)],
                "suppressed_at": pd.Series([when], dtype="datetime64[us, UTC]"),
                "suppressed_date": [when.date()],
            }
        )
        insert_new_arrow(frame, self.uri, ["user_sha256"], "suppressed_date")

    def hashes(self) -> frozenset[str]:
        """Every suppressed hash (empty before the first forget); read whole, see the module's bound."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            table = DeltaTable(delta_rs_uri(self.uri))
        except TableNotFoundError:
            return frozenset()
        return frozenset(table.to_pyarrow_dataset().to_table(columns=["user_sha256"]).column(0).to_pylist())

    def guard(self) -> WriteGuard:
        """A guard for one write of listener rows: the list as it stands now, re-read after the write."""
        return WriteGuard(self, self.hashes())


@dataclass(frozen=True)
class WriteGuard:
    """One write's view of the suppression list: ``keep`` drops the listeners forgotten before it, and
    ``sweep``, called after the write, deletes the rows of anyone forgotten while it ran — a forget that
    came between the read and the commit deleted nothing of what this write then added."""

    suppression: Suppression
    hashes: frozenset[str]

    def late(self) -> frozenset[str]:
        """The hashes suppressed since this guard was made."""
        return self.suppression.hashes() - self.hashes

    def late_listeners(self, df: DataFrame, column: str = "user_id") -> list[str]:
        """The ids in ``df`` of listeners forgotten since this guard was made (few: a forget's race)."""
        from pyspark.sql import functions as F

        late = self.late()
        if not late:
            return []
        found = df.where(hashed(F.col(column)).isin(*sorted(late))).select(column).distinct().collect()
        return sorted(row[0] for row in found)

    def keep(self, df: DataFrame, column: str = "user_id") -> DataFrame:
        """``df`` without the rows of forgotten listeners (by ``column``'s hash)."""
        return without(df, self.hashes, column)

    def sweep(self, spark: SparkSession, uri: str, column: str = "user_id", side: bool = False) -> int:
        """Delete from ``uri`` the rows of listeners forgotten since this guard was made; how many such
        listeners there were (0 without a late forget, the usual case: one small read). ``side``: ``uri``
        keys listeners as the factors do (``side = 'user'``, ``id``)."""
        from pyspark.sql import functions as F

        late = self.late()
        if not late:
            return 0
        condition = hashed(F.col(column)).isin(*sorted(late))
        if side:
            condition &= F.col("side") == F.lit("user")
        delete_where(spark, uri, condition)
        return len(late)


def hashed(column: Column) -> Column:
    """``user_hash`` in Spark: the hex SHA-256 of the id's UTF-8 bytes."""
    from pyspark.sql import functions as F

    return F.sha2(column, 256)


def without(df: DataFrame, hashes: frozenset[str], column: str = "user_id") -> DataFrame:
    """``df`` without the rows whose ``column`` hashes into ``hashes`` (as is when there are none)."""
    from pyspark.sql import functions as F

    if not hashes:
        return df
    forgotten = df.sparkSession.createDataFrame([(h,) for h in sorted(hashes)], "_forgotten string")
    return df.join(F.broadcast(forgotten), hashed(df[column]) == F.col("_forgotten"), "left_anti")


@dataclass
class ForgetReport:
    user_sha256: str
    removed: dict[str, int] = field(default_factory=dict)  # where → rows, factors or documents

    @property
    def total(self) -> int:
        return sum(self.removed.values())


def _filesystem(uri: str) -> tuple[FileSystem, str]:
    from pyarrow.fs import FileSystem

    return FileSystem.from_uri(arrow_uri(uri))


def lake_tables(lake_root: str) -> list[tuple[str, str]]:
    """Every Delta table under the lake, as (layer, name)."""
    from pyarrow.fs import FileSelector, FileType

    fs, root = _filesystem(lake_root)
    found = []
    for layer in fs.get_file_info(FileSelector(root, allow_not_found=True)):
        if layer.type != FileType.Directory:
            continue
        for table in fs.get_file_info(FileSelector(layer.path)):
            if table.type == FileType.Directory and fs.get_file_info(f"{table.path}/_delta_log").type == (
                FileType.Directory
            ):
                found.append((layer.base_name, table.base_name))
    return sorted(found)


def _carries(text: str | None, user_id: str) -> bool:
    """Does ``text`` hold ``user_id`` as a whole token (``u1`` is not in ``u10``)?"""
    if text is None:
        return False
    return re.search(rf"(?<![{_ID_CHARS}]){re.escape(user_id)}(?![{_ID_CHARS}])", text) is not None


def _raw_texts_carrying(uri: str, user_id: str) -> list[str]:
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    from podrec.lake.paths import delta_rs_uri

    dataset = DeltaTable(delta_rs_uri(uri)).to_pyarrow_dataset()
    candidates = dataset.to_table(
        columns=["raw_text"], filter=pc.match_substring(pc.field("raw_text"), user_id)
    )
    return sorted({t for t in candidates.column("raw_text").to_pylist() if _carries(t, user_id)})


def forget_in_lake(lake_root: str, user_id: str) -> dict[str, int]:
    """Delete the listener's rows from every table of the lake; rows removed per ``layer.name``."""
    removed = {}
    literal = sql_string(user_id)
    for layer, name in lake_tables(lake_root):
        if (layer, name) == AUDIT:
            continue
        uri = table_uri(lake_root, layer, name)
        found = set(columns(uri) or [])
        if "user_id" in found:
            removed[f"{layer}.{name}"] = delete_rows(uri, f"user_id = {literal}")
        elif {"side", "id"} <= found:
            removed[f"{layer}.{name}"] = delete_rows(uri, f"side = 'user' AND id = {literal}")
        elif "user_sha256" in found and (layer, name) != SUPPRESSED:
            removed[f"{layer}.{name}"] = delete_rows(uri, f"user_sha256 = {sql_string(user_hash(user_id))}")
        elif "raw_text" in found:
            texts = _raw_texts_carrying(uri, user_id)
            where = " OR ".join(f"raw_text = {sql_string(t)}" for t in texts)
            removed[f"{layer}.{name}"] = delete_rows(uri, where) if texts else 0
    return removed


def _parquet_files(fs: FileSystem, folder: str) -> list[str]:
    from pyarrow.fs import FileSelector, FileType

    entries = fs.get_file_info(FileSelector(folder, recursive=True, allow_not_found=True))
    return sorted(e.path for e in entries if e.type == FileType.File and e.base_name.endswith(".parquet"))


def _rewrite(fs: FileSystem, folder: str, change: Any) -> int:
    """Apply ``change(table) -> (table, removed)`` to every Parquet file under ``folder``; rows removed.

    A rewritten file loses its Hadoop ``.crc`` sidecar, which would no longer match (Spark reads a
    file without one unchecked)."""
    import pyarrow.parquet as pq
    from pyarrow.fs import FileType

    removed = 0
    for path in _parquet_files(fs, folder):
        with fs.open_input_file(path) as f:
            table = pq.read_table(f)
        new, n = change(table)
        if n:
            with fs.open_output_stream(path) as out:
                pq.write_table(new, out)
            parent, name = path.rsplit("/", 1)
            crc = f"{parent}/.{name}.crc"
            if fs.get_file_info(crc).type == FileType.File:
                fs.delete_file(crc)
            removed += n
    return removed


def _drop_where(column: str, values: set[Any]) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    def change(table: pa.Table) -> tuple[pa.Table, int]:
        if not values:
            return table, 0
        hit = pc.is_in(
            table.column(column), value_set=pa.array(sorted(values), type=table.schema.field(column).type)
        )
        return table.filter(pc.invert(hit)), pc.sum(hit).as_py() or 0

    return change


def _user_indexer(fs: FileSystem, model: str) -> str | None:
    """The folder of a fitted pipeline's StringIndexer stage that indexes ``user_id``."""
    from pyarrow.fs import FileSelector, FileType

    stages = fs.get_file_info(FileSelector(f"{model}/stages", allow_not_found=True))
    for stage in stages:
        if stage.type != FileType.Directory or "StringIndexer" not in stage.base_name:
            continue
        parts = fs.get_file_info(FileSelector(f"{stage.path}/metadata", allow_not_found=True))
        for part in (p for p in parts if p.base_name.startswith("part-")):  # one JSON line, Spark's text
            with fs.open_input_stream(part.path) as f:
                meta = json.loads(f.read().decode().splitlines()[0])
            if meta.get("paramMap", {}).get("inputCol") == "user_id":
                return stage.path
    return None


def _label_change(user_id: str, indexes: set[int], erase: bool) -> Any:
    """A change of a user indexer's labels: collect the listener's indexes, and with ``erase`` replace
    their label by a placeholder (every other label keeps its index)."""
    import pyarrow as pa

    def change(table: pa.Table) -> tuple[pa.Table, int]:
        rows = table.column("labelsArray").to_pylist() if "labelsArray" in table.column_names else []
        hits = 0
        for labels_array in rows:
            for labels in labels_array:
                for i, label in enumerate(labels):
                    if label == user_id:
                        indexes.add(i)
                        labels[i] = f"{FORGOTTEN_PREFIX}{i}"
                        hits += 1
        if not (erase and hits):
            return table, 0
        column = pa.array(rows, type=table.schema.field("labelsArray").type)
        return table.set_column(table.column_names.index("labelsArray"), "labelsArray", column), hits

    return change


def _id_row_change(user_id: str, indexes: set[int], erase: bool) -> Any:
    """A change of a (user_id, user_idx) table: collect the listener's indexes; with ``erase``, drop them."""
    import pyarrow.compute as pc

    def change(table: pa.Table) -> tuple[pa.Table, int]:
        hit = pc.equal(table.column("user_id"), user_id)
        indexes.update(table.filter(hit).column("user_idx").to_pylist())
        hits = pc.sum(hit).as_py() or 0
        return (table.filter(pc.invert(hit)), hits) if erase else (table, 0)

    return change


def forget_in_models(lake_root: str, user_id: str) -> dict[str, int]:
    """Delete the listener's factors from every saved ALS model; factor rows removed per model folder.

    Two layouts: a fitted pipeline (``stages/…StringIndexer…`` labels, ``stages/…ALS…/userFactors``)
    and an id table beside the model (``users/`` with user_id, user_idx; ``als/userFactors``). The
    factors go first and the id last, so a forget interrupted in between still finds the index again."""
    from pyarrow.fs import FileSelector, FileType

    fs, root = _filesystem(table_uri(lake_root, *MODELS))
    removed = {}
    for model in fs.get_file_info(FileSelector(root, allow_not_found=True)):
        if model.type == FileType.Directory and (found := _model_ids(fs, model.path)) is not None:
            removed[f"{'/'.join(MODELS)}/{model.base_name}"] = _forget_in_model(
                fs, model.path, found, user_id
            )
    return removed


def _model_ids(fs: FileSystem, model: str) -> tuple[str, Any] | None:
    """Where a saved model keeps its listener ids, and the change that reads or erases them."""
    if _parquet_files(fs, f"{model}/users"):
        return f"{model}/users", _id_row_change
    if (stage := _user_indexer(fs, model)) is not None:
        return f"{stage}/data", _label_change
    return None


def _forget_in_model(fs: FileSystem, model: str, found: tuple[str, Any], user_id: str) -> int:
    from pyarrow.fs import FileSelector, FileType

    ids, change = found
    indexes: set[int] = set()
    _rewrite(fs, ids, change(user_id, indexes, erase=False))
    factors = [
        entry.path
        for entry in fs.get_file_info(FileSelector(model, recursive=True))
        if entry.type == FileType.Directory and entry.base_name == "userFactors"
    ]
    removed = sum(_rewrite(fs, folder, _drop_where("id", indexes)) for folder in factors)
    _rewrite(fs, ids, change(user_id, set(), erase=True))
    return removed


def forget_late_in_model(model_uri: str, guard: WriteGuard) -> int:
    """Erase from the model saved at ``model_uri`` the listeners forgotten since ``guard`` was made (a
    forget that ran while the model was fitted); factor rows removed. Rare, so it may read every id."""
    import pyarrow.parquet as pq

    late = guard.late()
    fs, model = _filesystem(model_uri)
    if not late or (found := _model_ids(fs, model)) is None:
        return 0
    seen: set[str] = set()
    for path in _parquet_files(fs, found[0]):
        with fs.open_input_file(path) as f:
            table = pq.read_table(f)
        if "user_id" in table.column_names:
            seen.update(table.column("user_id").to_pylist())
        for labels_array in (
            table.column("labelsArray").to_pylist() if "labelsArray" in table.column_names else []
        ):
            seen.update(label for labels in labels_array for label in labels)
    return sum(_forget_in_model(fs, model, found, u) for u in sorted(seen) if user_hash(u) in late)


def forget_in_store(db: Database, user_id: str) -> dict[str, int]:
    """Delete the listener's list from every published version the store holds; documents per collection."""
    from podrec.serving.publish import POINTER, active_version, collection

    active = active_version(db)
    removed = {}
    for name in sorted(db.list_collection_names()):
        if name.startswith(collection("recommendations", "")):
            removed[f"mongo.{name}"] = db[name].delete_one({"_id": user_id}).deleted_count
    if active is not None and removed.get(f"mongo.{collection('recommendations', active)}"):
        # The API keeps what it read of the active version until the pointer changes: change it.
        db[POINTER].update_one({"_id": "active"}, {"$set": {"since": datetime.now(UTC)}})
    return removed


def audit_frame(report: ForgetReport, when: datetime) -> Any:
    """``monitoring.forget_audit`` rows: one per place looked in, with how much was removed there."""
    import pandas as pd

    forget_id = uuid.uuid4().hex
    targets = sorted(report.removed)
    return pd.DataFrame(
        {
            "forget_id": [forget_id] * len(targets),
            "user_sha256": [report.user_sha256] * len(targets),
            "target": targets,
            "removed": pd.Series([report.removed[t] for t in targets], dtype="int64"),
            "forgotten_at": pd.Series([when] * len(targets), dtype="datetime64[us, UTC]"),
            "forget_date": [when.date()] * len(targets),
        }
    )


def forget(lake_root: str, db: Database, user_id: str) -> ForgetReport:
    """Suppress ``user_id``, then remove them from the lake, the saved models and the serving store;
    record it in the audit. The suppression comes first, so that every write from then on leaves them
    out and any write already under way sweeps them out after itself (``WriteGuard``)."""
    if error := id_error("user_id", user_id):
        raise ForgetError(f"{error}: no listener can have this id, so there is nothing to forget")
    db.command("ping")  # the store answers before anything is changed
    Suppression(lake_root).add(user_id, datetime.now(UTC))
    report = ForgetReport(user_hash(user_id))
    report.removed |= forget_in_lake(lake_root, user_id)
    report.removed |= forget_in_models(lake_root, user_id)
    report.removed |= forget_in_store(db, user_id)
    append_arrow(audit_frame(report, datetime.now(UTC)), table_uri(lake_root, *AUDIT), "forget_date")
    return report


def retention_cutoff(day: date, days: int) -> date:
    """The first date a retention run on ``day`` keeps: ``days`` days, ``day`` included."""
    return day - timedelta(days=days - 1)


def delete_listener_rows_before(lake_root: str, events: date, derived: date) -> dict[str, int]:
    """Delete the rows of every listener table dated before its cutoff — ``events`` for tables dated by
    ``event_date``, ``derived`` for the others — and the saved models older than ``derived``; rows (or
    models) removed per ``layer.name``."""
    removed = {}
    for (layer, name), column in LISTENER_TABLES.items():
        cutoff = events if column == EVENT_DATE else derived
        predicate = f"{column} < CAST({sql_string(cutoff.isoformat())} AS DATE)"
        removed[f"{layer}.{name}"] = delete_rows(table_uri(lake_root, layer, name), predicate)
    removed[".".join(MODELS)] = delete_models_before(lake_root, derived)
    return removed


def delete_models_before(lake_root: str, cutoff: date) -> int:
    """Delete the saved ALS models (``model_date=YYYY-MM-DD`` folders) dated before ``cutoff``."""
    from pyarrow.fs import FileSelector, FileType

    fs, root = _filesystem(table_uri(lake_root, *MODELS))
    old = [
        entry.path
        for entry in fs.get_file_info(FileSelector(root, allow_not_found=True))
        if entry.type == FileType.Directory
        and entry.base_name.startswith("model_date=")
        and entry.base_name.removeprefix("model_date=") < cutoff.isoformat()
    ]
    for path in old:
        fs.delete_dir(path)
    return len(old)
