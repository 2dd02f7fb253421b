"""``podrec demo``: a week of simulated listening through the daily job, on local defaults.

The demo feeds the inputs (simulated listening into Kafka, synthesised speech for the sample's
Korean episodes) and then asks Dagster for two runs of the code location's own assets:
1. the week the day's model learns from — every asset upstream of the ``daily`` job (the episode
   snapshots, the catalog, the content track, Kafka → bronze) and the week's clean events and
   engagement, in one run over the partition range;
2. the ``daily`` job's selection for the day, with the evaluation its cold-start pick reads.
Each asset's step prints one line with its time; Dagster's event log goes to a file (its path is
printed) and every run is in the Dagster UI (``make dev``).
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import date, timedelta

from dagster import (
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    define_asset_job,
)

from podrec.content import sample_audio
from podrec.content.podcastindex import sample_catalog_rows
from podrec.ingest.producer import simulate_to_kafka
from podrec.lake.duck import open_lake
from podrec.settings import PodrecSettings
from podrec_app import demo_summary as summary
from podrec_app.console import Console, log_path
from podrec_assets.calendar import partition_range_tags
from podrec_assets.daily import daily_selection
from podrec_assets.definitions import build_definitions
from resources import build_resources

DEMO_DAYS = 7
DEMO_USERS = 2000
EVALUATION = AssetSelection.assets(["gold", "evaluation"])
SIMULATOR = AssetSelection.assets(["kafka", "simulated_events"])
# Weekly, one day at a time: the demo's fits use the settings as written (no tuning row yet).
TUNING = AssetSelection.assets(["gold", "tuning"])


class DemoFailed(RuntimeError):
    """A run of the demo failed; the message names the step and where its log is."""


def demo_jobs(defs: Definitions) -> Definitions:
    """``defs`` plus the demo's two runs as jobs: the week's inputs, then the day."""
    day_of = daily_selection() | EVALUATION
    week = (
        (day_of.upstream() - day_of - SIMULATOR - TUNING)
        | AssetSelection.assets(["silver", "user_events"], ["silver", "daily_engagement"])
    ).required_multi_asset_neighbors()
    return Definitions.merge(
        defs,
        Definitions(
            jobs=[
                define_asset_job(
                    "demo_week", selection=week, description="The week the day's model learns from."
                ),
                define_asset_job(
                    "demo_day", selection=day_of, description="The daily job and its evaluation."
                ),
            ]
        ),
    )


def run_job(
    defs: Definitions, name: str, instance: DagsterInstance, console: Console, **kwargs: object
) -> ExecuteInProcessResult:
    """Execute ``name`` in process, printing each step as it finishes (read from the event log)."""
    run_id = str(uuid.uuid4())
    job = defs.resolve_job_def(name)
    outcome: dict[str, ExecuteInProcessResult | BaseException] = {}

    def execute() -> None:
        try:
            outcome["result"] = job.execute_in_process(
                instance=instance, run_id=run_id, raise_on_error=False, **kwargs
            )
        except BaseException as exc:  # surfaced below, in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=execute, name=f"dagster-{name}")
    worker.start()
    started: dict[str, float] = {}
    printed = 0
    while True:
        alive = worker.is_alive()
        records = instance.all_logs(
            run_id,
            of_type={
                DagsterEventType.STEP_START,
                DagsterEventType.STEP_SUCCESS,
                DagsterEventType.STEP_FAILURE,
            },
        )
        for record in records[printed:]:
            event = record.get_dagster_event()
            if event.event_type == DagsterEventType.STEP_START:
                started[event.step_key] = record.timestamp
                continue
            took = record.timestamp - started.get(event.step_key, record.timestamp)
            mark = "ok" if event.event_type == DagsterEventType.STEP_SUCCESS else "FAILED"
            console.say(f"  {event.step_key.replace('__', '/'):<44} {took:7.1f} s  {mark}")
        printed = len(records)
        if not alive:
            break
        time.sleep(1.0)
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]
    assert isinstance(result, ExecuteInProcessResult)
    if not result.success:
        raise DemoFailed(f"the {name} run failed (run id {result.run_id}); its log is in {console.log_path}")
    return result


def run_demo(settings: PodrecSettings, day: date) -> str:
    """Feed a week into Kafka, run the week and the day through Dagster, then summarise what landed."""
    # Both services answer before anything starts: a demo that would fail at its last step fails now.
    services = build_resources(settings)
    services["kafka"].require_broker()
    services["mongo"].db().command("ping")
    services["mongo"].client().close()
    console = Console(log_path(settings, "demo"))
    defs = demo_jobs(build_definitions(settings))
    epoch = settings.partitions.start
    days = [d for d in (day - timedelta(days=DEMO_DAYS - 1 - i) for i in range(DEMO_DAYS)) if d >= epoch]
    resources = defs.resources
    console.say(
        f"podrec demo for {day}: {DEMO_USERS} listeners over {len(days)} day(s); "
        f"Dagster's log: {console.log_path}"
    )
    kafka = resources["kafka"]
    with console.quiet(), DagsterInstance.get() as instance:
        with console.stage("simulate listening into Kafka"):
            catalog, _ = resources["episode_source"].snapshot(day)
            sent = simulate_to_kafka(
                kafka.producer(), kafka.events_topic, catalog, days, DEMO_USERS, epoch=epoch
            )
        with console.stage("synthesise speech for the Korean episodes"):
            sample_audio.generate(sample_catalog_rows(), settings.data.audio_path)
        console.say(f"run 1: the week {days[0]} .. {day} (inputs of the daily job)")
        week = run_job(
            defs,
            "demo_week",
            instance,
            console,
            tags=partition_range_tags(days[0].isoformat(), day.isoformat()),
        )
        console.say(f"run 2: the daily job for {day}, with the evaluation its cold-start pick reads")
        daily = run_job(defs, "demo_day", instance, console, partition_key=day.isoformat())
        runs = [week, daily]
        with console.stage("ask the API, photograph the dashboard"):
            api = show_api_and_dashboard(settings, day)
        with console.stage("photograph the Dagster UI"):
            ui = show_dagster_ui(settings)
    return "\n".join(
        [
            "",
            summary.summarize(settings, day),
            summary.summarize_catalog(settings),
            summary.summarize_content(settings),
            f"simulated {sum(sent.values())} events for {len(days)} day(s) ({DEMO_USERS} listeners) → "
            f"{kafka.events_topic}",
            summary.summarize_events(settings),
            summary.summarize_evaluation(settings, day),
            summary.summarize_recommendations(settings, day),
            summary.summarize_serving(resources["mongo"].db()),
            api,
            summary.summarize_quality(settings, runs),
            summary.summarize_ab(settings, day),
            ui,
            "Dagster runs: " + ", ".join(r.run_id for r in runs) + " (browse them with `make dev`)",
            f"Dagster's event log of this demo: {console.log_path}",
        ]
    )


def show_api_and_dashboard(settings: PodrecSettings, day: date) -> str:
    """Start the API and the dashboard for a moment: ask for two lists, photograph both UIs."""
    import requests

    from api.auth import bearer
    from podrec_app.screenshots import api_and_dashboard, api_docs_page, capture, chromium, dashboard_page

    italian = (
        open_lake(settings.lake.root, {"recs": ("gold", "recommendations")})
        .sql(
            "select user_id from recs where rec_date = ? and locale like 'it%' "
            "and not starts_with(user_id, '__popular__/') order by user_id limit 1",
            [day],
        )
        .fetchone()
    )
    lines = ["API (`podrec serve`; OpenAPI docs at /docs; a token from `podrec token`):"]
    auth = bearer(settings, "podrec-demo", expires_in_s=600)  # a service's: it reads any listener's list
    with api_and_dashboard() as (api, board):
        for user, locale in ((italian[0] if italian else "someone", "it-IT"), ("a-new-listener", "pt-BR")):
            response = requests.get(f"{api}/users/{user}/recommendations", params={"locale": locale, "k": 3},
                                    headers=auth, timeout=10)  # fmt: skip
            if response.status_code != 200:
                raise DemoFailed(f"the API answered {response.status_code}: {response.text}")
            body = response.json()
            shown = ", ".join(f"{i['episode_id']} ({i['language']})" for i in body["items"])
            lines.append(f"  GET /users/{user}/recommendations?locale={locale}&k=3 → {body['source']} list, "
                         f"{body['policy']} arm, bucket {body['bucket']}: {shown}")  # fmt: skip
        try:
            chromium()
        except FileNotFoundError as exc:
            return "\n".join([*lines, f"screenshots skipped: {exc}"])
        shots = capture([dashboard_page(board), api_docs_page(api)], settings.data.path / "screenshots")
    lines += [f"screenshot of the {name}: {shot.path}" for name, shot in shots.items()]
    lines.append("Run them yourself: `podrec serve` (port 8000) and `podrec dashboard` (port 8501).")
    return "\n".join(lines)


def show_dagster_ui(settings: PodrecSettings) -> str:
    """Photograph the Dagster UI (asset graph with checks, one asset's checks and its columns, the
    Automation page) and a drift report."""
    from podrec_app.screenshots import (
        capture,
        chromium,
        dagster_asset_columns_page,
        dagster_asset_graph_page,
        dagster_automation_page,
        dagster_checks_page,
        dagster_ui,
        drift_report_page,
    )

    try:
        chromium()
    except FileNotFoundError as exc:
        return f"Dagster UI screenshots skipped: {exc}"
    from dashboard.queries import drift_reports

    reports = [r for r in drift_reports(settings.lake.root, limit=50) if r.name == "engagement.html"]
    folder = settings.data.path / "screenshots"
    with dagster_ui() as base:
        pages = [dagster_asset_graph_page(base, "gold"), dagster_asset_graph_page(base, "silver"),
                 dagster_checks_page(base), dagster_asset_columns_page(base),
                 dagster_automation_page(base)]  # fmt: skip
        if reports:  # newest first; a local copy, so the browser opens it from any lake
            copy = folder / f"drift-{reports[0].day}-{reports[0].name}"
            folder.mkdir(parents=True, exist_ok=True)
            copy.write_text(reports[0].read_text())
            pages.append(drift_report_page(copy.as_uri()))
        shots = capture(pages, folder)
    return "\n".join(f"screenshot of {name}: {shot.path}" for name, shot in shots.items())
