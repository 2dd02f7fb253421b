"""``podrec demo``: one day of the pipeline on local defaults, then what it made, read with DuckDB."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb
from dagster import ExecuteInProcessResult
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from pymongo.database import Database

from podrec.lake.delta import duckdb_view, table_uri
from podrec.settings import PodrecSettings
from resources.monitoring import MonitoringResource

DEMO_DAYS = 7
DEMO_USERS = 2000


def last_complete_day() -> date:
    """Yesterday in UTC: the newest day whose data can be complete."""
    return datetime.now(UTC).date() - timedelta(days=1)


def run_demo(settings: PodrecSettings, day: date) -> str:
    """Land the day's episodes, simulate a week of listening into Kafka, ingest it; summarise."""
    from dagster import DagsterInstance

    from podrec.content import sample_audio
    from podrec.content.podcastindex import sample_catalog_rows
    from podrec.ingest.producer import simulate_to_kafka
    from podrec_assets.definitions import defs

    resources = defs.resources
    epoch = date.fromisoformat(settings.partitions_start)
    days = [d for d in (day - timedelta(days=DEMO_DAYS - 1 - i) for i in range(DEMO_DAYS)) if d >= epoch]
    with DagsterInstance.get() as instance:
        episodes_run = defs.resolve_job_def("bronze_daily").execute_in_process(
            partition_key=day.isoformat(), instance=instance
        )
        _raise_unless(episodes_run, f"bronze_daily for {day}")
        catalog_run = defs.resolve_job_def("episode_catalog").execute_in_process(instance=instance)
        _raise_unless(catalog_run, "episode_catalog")
        # Korean sample episodes get synthesised speech, so Vosk has real audio to transcribe.
        sample_audio.generate(sample_catalog_rows(), settings.audio_path)
        content_run = defs.resolve_job_def("content").execute_in_process(instance=instance)
        _raise_unless(content_run, "content")
        catalog, _ = resources["episode_source"].snapshot(day)
        kafka = resources["kafka"]
        sent = simulate_to_kafka(kafka.producer(), kafka.events_topic, catalog, days, DEMO_USERS, epoch=epoch)
        ingest_run = defs.resolve_job_def("ingest_events").execute_in_process(instance=instance)
        _raise_unless(ingest_run, "ingest_events")
        window = {
            ASSET_PARTITION_RANGE_START_TAG: days[0].isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: day.isoformat(),
        }
        engagement_run = defs.resolve_job_def("engagement").execute_in_process(instance=instance, tags=window)
        _raise_unless(engagement_run, "engagement")
        # Evaluate first: the recommendations' cold-start strategy is the evaluation's pick (auto).
        evaluation_run = defs.resolve_job_def("evaluation").execute_in_process(
            instance=instance, partition_key=day.isoformat(),
            run_config={"ops": {"gold__evaluation": {"config": {"protocols": ["time"]}}}},
        )  # fmt: skip
        _raise_unless(evaluation_run, "evaluation")
        recommendations_run = defs.resolve_job_def("recommendations").execute_in_process(
            instance=instance, partition_key=day.isoformat()
        )
        _raise_unless(recommendations_run, "recommendations")
        monitoring_run = defs.resolve_job_def("monitoring").execute_in_process(
            instance=instance, partition_key=day.isoformat()
        )
        _raise_unless(monitoring_run, "monitoring")
    runs = [episodes_run, catalog_run, content_run, ingest_run, engagement_run, evaluation_run,
            recommendations_run, monitoring_run]  # fmt: skip
    return "\n".join(
        [
            summarize(settings, day),
            summarize_catalog(settings),
            summarize_content(settings),
            f"simulated {sum(sent.values())} events for {len(days)} day(s) ({DEMO_USERS} listeners) → "
            f"{kafka.events_topic}",
            summarize_events(settings),
            summarize_evaluation(settings, day),
            summarize_recommendations(settings, day),
            summarize_serving(resources["mongo"].db()),
            show_api_and_dashboard(settings, day),
            summarize_quality(settings, runs),
            summarize_ab(settings, day),
            show_dagster_ui(settings),
            "Dagster runs: " + ", ".join(r.run_id for r in runs) + " (browse them with `make dev`)",
        ]
    )


def _raise_unless(result: ExecuteInProcessResult, what: str) -> None:
    if not result.success:
        raise RuntimeError(f"the {what} run failed (run id {result.run_id})")


def _lake(settings: PodrecSettings, **views: tuple[str, str]) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with each ``name=(layer, table)`` registered as a view."""
    con = duckdb.connect()
    for name, (layer, table) in views.items():
        duckdb_view(con, name, table_uri(settings.lake_root, layer, table))
    return con


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
        f"  lake: {settings.lake_root}",
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


def show_api_and_dashboard(settings: PodrecSettings, day: date) -> str:
    """Start the API and the dashboard for a moment: ask for two lists, photograph both UIs."""
    import requests

    from podrec_app.screenshots import api_and_dashboard, api_docs_page, capture, chromium, dashboard_page

    con = _lake(settings, recs=("gold", "recommendations"))
    italian = con.execute(
        "select user_id from recs where rec_date = ? and locale like 'it%' "
        "and not starts_with(user_id, '__popular__/') order by user_id limit 1",
        [day],
    ).fetchone()
    lines = ["API (`podrec serve`; OpenAPI docs at /docs):"]
    with api_and_dashboard() as (api, board):
        for user, locale in ((italian[0] if italian else "someone", "it-IT"), ("a-new-listener", "pt-BR")):
            response = requests.get(f"{api}/users/{user}/recommendations", params={"locale": locale, "k": 3},
                                    timeout=10)  # fmt: skip
            if response.status_code != 200:
                raise RuntimeError(f"the API answered {response.status_code}: {response.text}")
            body = response.json()
            shown = ", ".join(f"{i['episode_id']} ({i['language']})" for i in body["items"])
            lines.append(f"  GET /users/{user}/recommendations?locale={locale}&k=3 → {body['source']} list, "
                         f"{body['policy']} arm, bucket {body['bucket']}: {shown}")  # fmt: skip
        try:
            chromium()
        except FileNotFoundError as exc:
            return "\n".join([*lines, f"screenshots skipped: {exc}"])
        shots = capture([dashboard_page(board), api_docs_page(api)], settings.data_path / "screenshots")
    lines += [f"screenshot of the {name}: {shot.path}" for name, shot in shots.items()]
    lines.append("Run them yourself: `podrec serve` (port 8000) and `podrec dashboard` (port 8501).")
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

    lines.append(f"newest drift reports under {MonitoringResource.reports_root(settings.lake_root)}:")
    lines += [f"  {p.parent.name}/{p.name}" for p in drift_reports(settings.lake_root, limit=4)]
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


def show_dagster_ui(settings: PodrecSettings) -> str:
    """Photograph the Dagster UI (asset graph with checks, one asset's checks) and a drift report."""
    from podrec_app.screenshots import (
        capture,
        chromium,
        dagster_asset_graph_page,
        dagster_checks_page,
        dagster_ui,
        drift_report_page,
    )

    try:
        chromium()
    except FileNotFoundError as exc:
        return f"Dagster UI screenshots skipped: {exc}"
    from dashboard.queries import drift_reports

    reports = [p for p in drift_reports(settings.lake_root, limit=50) if p.name == "engagement.html"]
    with dagster_ui() as base:
        pages = [dagster_asset_graph_page(base, "gold"), dagster_asset_graph_page(base, "silver"),
                 dagster_checks_page(base)]  # fmt: skip
        if reports:
            pages.append(drift_report_page(reports[0].as_uri()))  # newest first
        shots = capture(pages, settings.data_path / "screenshots")
    return "\n".join(f"screenshot of {name}: {shot.path}" for name, shot in shots.items())


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
