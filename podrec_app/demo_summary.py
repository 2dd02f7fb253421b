"""What ``podrec demo`` prints after its runs: the tables it made, read back with DuckDB (no Spark)."""

from __future__ import annotations

from datetime import date

import duckdb
from dagster import ExecuteInProcessResult
from pymongo.database import Database

from podrec.lake.duck import open_lake
from podrec.quality.drift import reports_root
from podrec.settings import PodrecSettings


def _lake(settings: PodrecSettings, **views: tuple[str, str]) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with each ``name=(layer, table)`` registered as a view."""
    return open_lake(settings.lake.root, views).con


def summarize(settings: PodrecSettings, day: date) -> str:
    con = _lake(settings, episodes=("bronze", "episodes"))
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
        f"  lake: {settings.lake.root}",
    ]
    return "\n".join(lines)


def summarize_catalog(settings: PodrecSettings) -> str:
    con = _lake(settings, catalog=("silver", "episodes"))
    episodes, canonical = con.execute(
        "SELECT count(*), count(DISTINCT canonical_episode_id) FROM catalog"
    ).fetchone()
    example = con.execute(
        "SELECT string_agg(language || ': ' || title, '  |  ' ORDER BY language) FROM catalog "
        "GROUP BY canonical_episode_id HAVING count(*) > 1 ORDER BY canonical_episode_id LIMIT 1"
    ).fetchone()
    return (
        f"silver.episodes: {episodes} episodes, {canonical} canonical (language variants merged)\n"
        f"  e.g. {example[0] if example else 'no variants yet'}"
    )


def summarize_content(settings: PodrecSettings) -> str:
    con = _lake(
        settings,
        transcripts=("silver", "transcripts"),
        similarity=("gold", "episode_similarity"),
        catalog=("silver", "episodes"),
    )
    sources = con.execute("SELECT source, count(*) FROM transcripts GROUP BY 1 ORDER BY 2 DESC").fetchall()
    vosk = con.execute(
        "SELECT episode_id, left(text, 60), audio_seconds FROM transcripts WHERE source = 'vosk' LIMIT 1"
    ).fetchone()
    similar = con.execute(
        "SELECT c.title, n.title, s.similarity FROM similarity s "
        "JOIN catalog c ON c.episode_id = s.episode_id "
        "JOIN catalog n ON n.episode_id = s.neighbor_episode_id "
        "WHERE s.episode_id = (SELECT min(episode_id) FROM catalog) AND s.rank <= 3 ORDER BY s.rank"
    ).fetchall()
    lines = ["silver.transcripts by source: " + ", ".join(f"{s} {n}" for s, n in sources)]
    if vosk:
        lines.append(f"  vosk heard ({vosk[2]:.0f}s of synthetic Korean speech): {vosk[1]}…")
    if similar:
        lines.append(f"gold.episode_similarity: nearest to “{similar[0][0]}”:")
        lines += [f"    {score:.2f}  {title}" for _, title, score in similar]
    return "\n".join(lines)


def summarize_events(settings: PodrecSettings) -> str:
    con = _lake(settings, events=("bronze", "user_events"), rejected=("bronze", "user_events_rejected"))
    per_day = con.execute(
        "SELECT event_date, count(*), count(DISTINCT user_id) FROM events GROUP BY 1 ORDER BY 1"
    ).fetchall()
    mix = con.execute("SELECT event_type, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC").fetchall()
    reasons = con.execute(
        "SELECT split_part(error, ':', 1), count(*) FROM rejected GROUP BY 1 ORDER BY 2 DESC"
    ).fetchall()
    top = con.execute(
        "SELECT e.episode_id, count(*) AS plays FROM events e WHERE event_type = 'complete' "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5"
    ).fetchall()
    lines = [
        "bronze.user_events (accepted, exactly once):",
        *(f"    {d}  {n:>7} events  {u:>5} listeners" for d, n, u in per_day),
        "  event mix: " + ", ".join(f"{t} {n}" for t, n in mix),
        "bronze.user_events_rejected: " + (", ".join(f"{r} {n}" for r, n in reasons) if reasons else "none"),
        "  most completed episodes: " + ", ".join(f"{e} ({n})" for e, n in top),
    ]
    return "\n".join(lines)


def summarize_evaluation(settings: PodrecSettings, day: date) -> str:
    con = _lake(settings, evaluation=("gold", "evaluation"))
    rows = con.execute(
        "SELECT policy, cold_start, metric, value FROM evaluation WHERE eval_date = ? AND protocol = 'time' "
        "AND metric IN ('ndcg', 'recall', 'cold_recall', 'coverage')",
        [day],
    ).fetchall()
    table: dict[str, dict[str, float | None]] = {}
    for policy, strategy, metric, value in rows:
        name = policy if policy != "hybrid" else f"hybrid/{strategy}"
        table.setdefault(name, {})[metric] = value
    fmt = lambda v: "  n/a" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [f"gold.evaluation ({day}, time split, K=10):  NDCG  recall  cold-recall  coverage"]
    for name, v in sorted(table.items(), key=lambda kv: -(kv[1].get("ndcg") or 0)):
        lines.append(
            f"    {name:<18} {fmt(v.get('ndcg'))}  {fmt(v.get('recall'))}  {fmt(v.get('cold_recall'))}"
            f"        {fmt(v.get('coverage'))}"
        )
    return "\n".join(lines)


def summarize_recommendations(settings: PodrecSettings, day: date) -> str:
    con = _lake(settings, recs=("gold", "recommendations"), catalog=("silver", "episodes"))
    picks = (
        "policy = 'hybrid' AND starts_with(locale, 'en')",
        "policy = 'als_only'",
        "policy = 'hybrid' AND NOT starts_with(locale, 'en')",
    )
    users = [
        con.execute(
            "SELECT min(user_id) FROM recs WHERE rec_date = ? AND NOT starts_with(user_id, '__') "
            f"AND {where}",
            [day],
        ).fetchone()
        for where in picks
    ]
    lines = [f"gold.recommendations for {day}: a few listeners' lists"]
    for (user_id,) in users:
        rows = con.execute(
            "SELECT r.rank, r.policy, r.bucket, r.locale, c.language, c.title, r.score, r.reason, "
            "r.model_version FROM recs r JOIN catalog c USING (episode_id) "
            "WHERE r.rec_date = ? AND r.user_id = ? ORDER BY r.rank LIMIT 5",
            [day, user_id],
        ).fetchall()
        if not rows:
            continue
        _, policy, bucket, locale, *_rest = rows[0]
        lines.append(f"  {user_id} ({locale}, bucket {bucket} → {policy}, model {rows[0][8]}):")
        lines += [
            f"    {k}. [{lang}] {title[:48]:<48} {score:.2f}  {reason}"
            for k, _p, _b, _l, lang, title, score, reason, _m in rows
        ]
    return "\n".join(lines)


def summarize_quality(settings: PodrecSettings, runs: list[ExecuteInProcessResult]) -> str:
    """How the Great Expectations and Evidently checks of the demo's runs came out."""
    evaluations = [e for r in runs for e in r.get_asset_check_evaluations()]
    passed = sum(e.passed for e in evaluations)
    lines = [f"checks: {len(evaluations)} evaluated in the runs above, {passed} passed"]
    for e in evaluations:
        if not e.passed:
            lines.append(f"  not passed ({e.severity.value}): {e.asset_key.to_user_string()} {e.check_name}")
    from dashboard.queries import drift_reports

    lines.append(f"newest drift reports under {reports_root(settings.lake.root)}:")
    lines += [f"  {r.day}/{r.name}" for r in drift_reports(settings.lake.root, limit=4)]
    return "\n".join(lines)


def summarize_ab(settings: PodrecSettings, day: date) -> str:
    con = _lake(settings, ab=("monitoring", "ab_analysis"))
    rows = con.execute(
        "select metric, value, ci_low, ci_high, listeners from ab where day = ? and level = 'difference' "
        "order by metric",
        [day],
    ).fetchall()
    lines = [f"A/B hybrid minus als_only on {day} (95% interval), monitoring.ab_analysis:"]
    lines += [f"  {m:<18} {v:+.4f}  [{lo:+.4f}, {hi:+.4f}]  ({n} listeners)" for m, v, lo, hi, n in rows]
    return "\n".join(lines)


def summarize_serving(db: Database) -> str:
    from podrec.serving.publish import PUBLISHES, active_version, collection

    version = active_version(db)
    if version is None:
        return "MongoDB: nothing published yet"
    record = db[PUBLISHES].find_one({"_id": version}) or {}
    lists = db[collection("recommendations", version)].count_documents({})
    kept = db[PUBLISHES].count_documents({"status": {"$in": ["standby", "staged"]}})
    return (
        f"MongoDB: serving {version} ({lists} lists, gate passed: {', '.join(record['gate']['checks'])}); "
        f"{kept} earlier version(s) kept for `podrec publish rollback`"
    )
