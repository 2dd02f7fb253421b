"""``podrec demo``: run the main job for one day on local defaults and print what it made."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb

from podrec.lake import duckdb_view, table_uri
from podrec.settings import PodrecSettings


def last_complete_day() -> date:
    """Yesterday in UTC: the newest day whose data can be complete."""
    return datetime.now(UTC).date() - timedelta(days=1)


def run_demo(settings: PodrecSettings, day: date) -> str:
    """Materialize the daily job for ``day`` through Dagster and return a summary."""
    from dagster import DagsterInstance

    from podrec_assets.definitions import defs

    with DagsterInstance.get() as instance:
        result = defs.resolve_job_def("bronze_daily").execute_in_process(
            partition_key=day.isoformat(), instance=instance
        )
    if not result.success:
        raise RuntimeError(f"the bronze_daily run for {day} failed (run id {result.run_id})")
    return summarize(settings, day) + f"\nDagster run: {result.run_id} (see `make dev`)"


def summarize(settings: PodrecSettings, day: date) -> str:
    con = duckdb.connect()
    duckdb_view(con, "episodes", table_uri(settings.lake_root, "bronze", "episodes"))
    total, feeds = con.execute(
        "SELECT count(*), count(DISTINCT feed_id) FROM episodes WHERE ingest_date = ?", [day]
    ).fetchone()
    by_language = con.execute(
        "SELECT language, count(*) FROM episodes WHERE ingest_date = ? GROUP BY 1 ORDER BY 2 DESC, 1",
        [day],
    ).fetchall()
    newest = con.execute(
        "SELECT published_at::DATE, language, feed_title, title FROM episodes "
        "WHERE ingest_date = ? ORDER BY published_at DESC LIMIT 5",
        [day],
    ).fetchall()
    lines = [
        f"bronze.episodes for {day}: {total} episodes from {feeds} podcasts (read with DuckDB)",
        "  by language: " + ", ".join(f"{lang} {n}" for lang, n in by_language),
        "  newest:",
        *(f"    {d}  [{lang}] {show} — {title}" for d, lang, show, title in newest),
        f"  lake: {settings.lake_root}",
    ]
    return "\n".join(lines)
