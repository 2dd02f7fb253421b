"""Evidently drift reports as plain functions: a day against its reference window, saved to the lake.

``column_drift`` compares columns (Evidently picks the test by type and size: K-S / chi-square or Z
p-values for small samples, Wasserstein / Jensen-Shannon distances for large ones) and builds the
report; ``column_scores`` runs the same tests without one — building a report's figures is four
fifths of its cost, so a range run scores every day and renders only the days that need a report.
``embedding_drift`` compares new episodes' transcript vectors with earlier ones (cosine distance
of the mean vectors). Both return a ``Drift`` summary and the Evidently snapshot, which
``save_report`` writes as HTML and JSON under ``<lake>/monitoring/drift_reports/<day>/``.

Evidently is imported by the functions that use it, not by this module: it takes seconds to import,
and the code location (every Dagster run, every ``podrec`` command) imports this module to define the
drift checks, most of which never draw a report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from podrec.lake.paths import arrow_uri, table_uri


@dataclass(frozen=True)
class ColumnDrift:
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class Drift:
    """What one report found: each column's test, the drifted share, and whether to warn."""

    columns: dict[str, ColumnDrift]
    share: float
    warn: bool
    current_rows: int
    reference_rows: int
    note: str = ""
    report: dict[str, str] = field(default_factory=dict)  # "html"/"json" -> where it was saved

    def markdown(self) -> str:
        if not self.columns:
            return self.note
        table = pd.DataFrame(
            [
                {"column": c, "test": d.method, "score": round(d.score, 4), "threshold": d.threshold,
                 "drifted": "yes" if d.drifted else "no"}
                for c, d in self.columns.items()
            ]
        )  # fmt: skip
        head = f"{sum(d.drifted for d in self.columns.values())} of {len(self.columns)} drifted "
        head += f"({self.current_rows} rows against {self.reference_rows} in the reference window)."
        return head + "\n\n" + table.to_markdown(index=False) + (f"\n\n{self.note}" if self.note else "")


def _drifted(method: str, score: float, threshold: float) -> bool:
    # Evidently reports p-values for statistical tests (drift below the threshold) and distances
    # otherwise (drift at or above it).
    return score < threshold if "p_value" in method else score >= threshold


def _empty(current: pd.DataFrame, reference: pd.DataFrame) -> Drift | None:
    if current.empty or reference.empty:
        note = "No reference window yet." if reference.empty else "No rows for the day."
        return Drift({}, 0.0, False, len(current), len(reference), note=note)
    return None


def column_scores(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    drift_share: float,
) -> Drift:
    """``column_drift``'s findings without its report: each column through the statistical test
    Evidently's preset picks for that column's type and sizes (its registry), at its default threshold."""
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    if (nothing := _empty(current, reference)) is not None:
        return nothing
    found: dict[str, ColumnDrift] = {}
    types = [(c, ColumnType.Numerical) for c in numerical] + [
        (c, ColumnType.Categorical) for c in categorical
    ]
    for column, kind in types:
        # As the preset cleans a column: infinities are missing values, missing values are dropped.
        ref, cur = (
            frame[column].replace([-np.inf, np.inf], np.nan).dropna() for frame in (reference, current)
        )
        if ref.empty or cur.empty:
            continue
        test = get_stattest(ref, cur, kind, None)
        result = test(ref, cur, kind, None)
        score, threshold = float(result.drift_score), float(result.actual_threshold)
        found[column] = ColumnDrift(
            test.display_name, score, threshold, _drifted(test.display_name, score, threshold)
        )
    share = sum(d.drifted for d in found.values()) / len(found) if found else 0.0
    return Drift(found, share, share >= drift_share, len(current), len(reference))


def column_drift(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    drift_share: float,
) -> tuple[Drift, Any]:
    """Per-column drift of the day against the reference; warn when ``drift_share`` of them drifted."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    if (nothing := _empty(current, reference)) is not None:
        return nothing, None
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    columns = numerical + categorical
    snapshot = Report([DataDriftPreset(columns=columns, drift_share=drift_share)]).run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    found: dict[str, ColumnDrift] = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            score = float(metric["value"])
            found[config["column"]] = ColumnDrift(
                config["method"], score, float(config["threshold"]),
                _drifted(config["method"], score, float(config["threshold"])),
            )  # fmt: skip
    share = sum(d.drifted for d in found.values()) / len(found) if found else 0.0
    return Drift(found, share, share >= drift_share, len(current), len(reference)), snapshot


# A day with one or two new episodes says nothing about a shift (and Evidently's density plots need more).
MIN_VECTORS = 5


def embedding_drift(current: np.ndarray, reference: np.ndarray, threshold: float) -> tuple[Drift, Any]:
    """Cosine distance between the mean vector of the new episodes and of the reference ones."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.legacy.metrics.data_drift.embedding_drift_methods import distance
    from evidently.metrics import EmbeddingsDrift

    if len(current) < MIN_VECTORS or len(reference) < MIN_VECTORS:
        note = (
            f"Too few new episodes to compare ({len(current)}, at least {MIN_VECTORS})."
            if len(reference) >= MIN_VECTORS
            else "No earlier episodes to compare with yet."
        )
        return Drift({}, 0.0, False, len(current), len(reference), note=note), None
    names = [f"d{i}" for i in range(current.shape[1])]
    definition = DataDefinition(numerical_columns=names, embeddings={"transcript": names})
    snapshot = Report(
        [
            EmbeddingsDrift(
                embeddings_name="transcript", drift_method=distance(dist="cosine", threshold=threshold)
            )
        ]
    ).run(
        Dataset.from_pandas(pd.DataFrame(current, columns=names), data_definition=definition),
        Dataset.from_pandas(pd.DataFrame(reference, columns=names), data_definition=definition),
    )
    score = float(snapshot.dict()["metrics"][0]["value"])
    drifted = score >= threshold
    column = {"transcript embedding": ColumnDrift("cosine distance of means", score, threshold, drifted)}
    return Drift(column, float(drifted), drifted, len(current), len(reference)), snapshot


SCORE_COLUMNS = (
    "day", "check", "drifted_share", "warn", "drifted_columns", "columns", "current_rows", "reference_rows",
    "report", "note",
)  # fmt: skip


def score_rows(findings: list[tuple[str, Drift]], check: str) -> pd.DataFrame:
    """``monitoring.drift_scores`` rows: one per day and check, every column's test and score as JSON,
    and where the report is when one was written (reports are kept for drifting days and the newest)."""
    return pd.DataFrame(
        [
            {
                "day": day, "check": check, "drifted_share": float(d.share), "warn": bool(d.warn),
                "drifted_columns": ", ".join(c for c, col in d.columns.items() if col.drifted),
                "columns": json.dumps({c: col.__dict__ for c, col in d.columns.items()}),
                "current_rows": int(d.current_rows), "reference_rows": int(d.reference_rows),
                "report": d.report.get("html", ""), "note": d.note,
            }
            for day, d in findings
        ],
        columns=list(SCORE_COLUMNS),
    )  # fmt: skip


def reports_root(lake_root: str) -> str:
    """Drift reports live in the lake, beside the tables they describe."""
    return table_uri(lake_root, "monitoring", "drift_reports")


def save_report(snapshot: Any, reports_root: str, day: str, name: str) -> dict[str, str]:
    """Write the report's HTML and JSON to ``<reports_root>/<day>/<name>.{html,json}``."""
    from pyarrow import fs

    uris = {}
    for kind, text in (("html", snapshot.get_html_str(as_iframe=False)), ("json", snapshot.json())):
        uri = f"{reports_root.rstrip('/')}/{day}/{name}.{kind}"
        filesystem, path = fs.FileSystem.from_uri(arrow_uri(uri))
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with filesystem.open_output_stream(path) as out:
            out.write(text.encode())
        uris[kind] = uri
    return uris
