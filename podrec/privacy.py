"""Forgetting a listener, and keeping events no longer than the retention.

``forget`` removes one listener from everything podrec keeps about them:
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

Deleted rows remain in the tables' older Delta versions (time travel) until ``VACUUM`` removes those
files (weekly, by monitoring/lake_maintenance: podrec/lake/maintenance.py); records on the Kafka topic
stay until the topic's own retention, and a replay from it (``podrec ingest --replay``) would bring
them back (README: Privacy).

``retention_cutoff``/``delete_events_before`` implement the event retention: rows of the event tables
dated before the cutoff are deleted (a day at a time, by the date partition).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from podrec.ids import FORGOTTEN_PREFIX
from podrec.lake.delta import append_arrow, columns, delete_rows, sql_string
from podrec.lake.paths import arrow_uri, table_uri

if TYPE_CHECKING:
    import pyarrow as pa
    from pyarrow.fs import FileSystem
    from pymongo.database import Database

MODELS = ("gold", "als_models")
AUDIT = ("monitoring", "forget_audit")
# Tables whose rows are events, dated by ``event_date``: what the retention trims.
EVENT_TABLES = (
    ("bronze", "user_events"),
    ("bronze", "user_events_rejected"),
    ("silver", "user_events"),
    ("silver", "daily_engagement"),
)
_ID_CHARS = r"A-Za-z0-9_.:@-"


def user_hash(user_id: str) -> str:
    """What the audit keeps instead of the id: enough to answer "was X forgotten?", not to list anyone."""
    return hashlib.sha256(user_id.encode()).hexdigest()


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
        if model.type != FileType.Directory:
            continue
        if _parquet_files(fs, f"{model.path}/users"):
            ids, change = f"{model.path}/users", _id_row_change
        elif (stage := _user_indexer(fs, model.path)) is not None:
            ids, change = f"{stage}/data", _label_change
        else:
            continue
        indexes: set[int] = set()
        _rewrite(fs, ids, change(user_id, indexes, erase=False))
        factors = [
            entry.path
            for entry in fs.get_file_info(FileSelector(model.path, recursive=True))
            if entry.type == FileType.Directory and entry.base_name == "userFactors"
        ]
        removed[f"{'/'.join(MODELS)}/{model.base_name}"] = sum(
            _rewrite(fs, folder, _drop_where("id", indexes)) for folder in factors
        )
        _rewrite(fs, ids, change(user_id, set(), erase=True))
    return removed


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
    """Remove ``user_id`` from the lake, the saved models and the serving store; record it in the audit."""
    db.command("ping")  # the store answers before anything is deleted
    report = ForgetReport(user_hash(user_id))
    report.removed |= forget_in_lake(lake_root, user_id)
    report.removed |= forget_in_models(lake_root, user_id)
    report.removed |= forget_in_store(db, user_id)
    append_arrow(audit_frame(report, datetime.now(UTC)), table_uri(lake_root, *AUDIT), "forget_date")
    return report


def retention_cutoff(day: date, event_days: int) -> date:
    """The first event_date a retention run on ``day`` keeps: ``event_days`` days, ``day`` included."""
    return day - timedelta(days=event_days - 1)


def delete_events_before(lake_root: str, cutoff: date) -> dict[str, int]:
    """Delete the rows of every event table dated before ``cutoff``; rows removed per ``layer.name``."""
    predicate = f"event_date < CAST({sql_string(cutoff.isoformat())} AS DATE)"
    return {
        f"{layer}.{name}": delete_rows(table_uri(lake_root, layer, name), predicate)
        for layer, name in EVENT_TABLES
    }
