"""Evidently drift on synthetic days: a shifted day is flagged, a day like its reference is not."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podrec.quality.drift import column_drift, column_scores, embedding_drift, save_report

NUMERIC = ["plays", "listen_seconds", "max_completion", "engagement"]


def listening(rows: int, seed: int, scale: float = 1.0, korean: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    completion = rng.beta(2, 2, rows)
    languages = rng.choice(["en", "it", "pt", "ko"], rows, p=[0.6, 0.2, 0.15, 0.05])
    languages[rng.random(rows) < korean] = "ko"
    return pd.DataFrame(
        {
            "plays": rng.poisson(1.5, rows) + 1,
            "listen_seconds": completion * 1800 * scale,
            "max_completion": completion,
            "engagement": (completion + rng.binomial(1, 0.2, rows) * 2) * scale,
            "language": languages,
        }
    )


def test_a_day_like_its_reference_is_not_flagged() -> None:
    drift, snapshot = column_drift(listening(2000, 1), listening(14000, 2), NUMERIC, ["language"], 0.5)
    assert not drift.warn and drift.share == 0.0
    assert set(drift.columns) == {*NUMERIC, "language"} and snapshot is not None


def test_engagement_halved_and_a_language_surge_are_flagged() -> None:
    shifted = listening(2000, 1, scale=0.5, korean=0.5)
    drift, _ = column_drift(shifted, listening(14000, 2), NUMERIC, ["language"], 0.5)
    assert drift.warn
    assert {c for c, d in drift.columns.items() if d.drifted} >= {"listen_seconds", "engagement", "language"}
    assert not drift.columns["plays"].drifted  # what did not move is not blamed
    assert "drifted" in drift.markdown()


def test_no_reference_window_is_said_not_guessed() -> None:
    drift, snapshot = column_drift(listening(100, 1), listening(0, 2), NUMERIC, ["language"], 0.5)
    assert snapshot is None and not drift.warn and drift.note == "No reference window yet."


@pytest.mark.parametrize("rows", [40, 2000])  # small samples: p-value tests; large: distances
@pytest.mark.parametrize("shift", [1.0, 0.5])
def test_scores_without_a_report_are_the_reports_findings(rows: int, shift: float) -> None:
    current = listening(rows, 1, scale=shift, korean=0.3 if shift < 1 else 0.0)
    current.loc[current.index[:3], "engagement"] = np.inf  # cleaned the same way on both paths
    reference = listening(rows * 7, 2)
    reported, _ = column_drift(current, reference, NUMERIC, ["language"], 0.5)
    assert column_scores(current, reference, NUMERIC, ["language"], 0.5) == reported
    assert {d.method for d in reported.columns.values()} and (shift == 1.0 or reported.warn)


def test_scores_without_a_reference_say_so() -> None:
    drift = column_scores(listening(100, 1), listening(0, 2), NUMERIC, ["language"], 0.5)
    assert not drift.warn and not drift.columns and drift.note == "No reference window yet."


def test_new_episodes_about_something_else_drift(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    topic = rng.normal(size=64)
    reference = topic + rng.normal(scale=0.8, size=(80, 64))
    same = topic + rng.normal(scale=0.8, size=(10, 64))
    other = -topic + rng.normal(scale=0.8, size=(10, 64))
    assert not embedding_drift(same, reference, 0.2)[0].warn
    drift, snapshot = embedding_drift(other, reference, 0.2)
    assert drift.warn and drift.columns["transcript embedding"].score >= 0.2
    saved = save_report(snapshot, str(tmp_path / "monitoring" / "drift_reports"), "2026-11-20", "embeddings")
    html, data = Path(saved["html"]), json.loads(Path(saved["json"]).read_text())
    assert html.parent.name == "2026-11-20" and html.stat().st_size > 10_000 and "metrics" in data
