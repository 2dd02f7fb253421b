"""When each asset runs: declarative automation conditions, evaluated by Dagster's automation daemon.

The graph runs itself in dependency order rather than by a chain of clocks. A daily table waits for
its cron tick *and* for the day's inputs: if bronze lands late, the daily run waits for it instead of
running on yesterday's input. Every condition is written here, against the table it drives, so the
whole plan reads in one place:

- ``bronze/episodes`` lands the day that just ended at 00:30 UTC.
- The Kafka ingestion (``bronze/user_events``, ``bronze/impressions`` and their rejects) drains the
  topics at 00:15 UTC, so a quiet night still records that bronze holds the whole day; between
  drains the Kafka-lag sensor (``sensors/kafka_lag.py``) ingests whenever the topic backs up.
- The content track (``silver/episodes`` → transcripts → embeddings → similarity) runs eagerly
  whenever a bronze snapshot lands; each step skips the episodes already done.
- The daily path (``daily.DAILY_ASSETS``: events → engagement → model → lists → MongoDB → A/B)
  runs at 01:30 UTC for the day that ended, once its inputs are there (``input_of_the_day``).
- Retention at 04:00 UTC; the evaluation (Monday 03:00) and tuning (Monday 04:00) weekly, under the
  same wait for their inputs; lake maintenance on Sundays at 05:00.

``kafka/simulated_events`` (the simulator) has no condition: it stands in for listeners, not for a
step of the pipeline. ``automation_sensor`` is the daemon's switch: on where ``PODREC_AUTOMATION_RUNNING``
says (``make dev`` and the cluster profile), off elsewhere so tests and the demo run only what
they ask for.
"""

from __future__ import annotations

from dagster import (
    AssetKey,
    AssetSelection,
    AssetSpec,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    Definitions,
)

from podrec.settings import PodrecSettings
from podrec_assets.daily import DAILY_ASSETS

UTC = "UTC"
# A day's partition closes at midnight UTC: input written after this tick holds all of the day.
DAY_CLOSES = "0 0 * * *"
DRAIN = "15 0 * * *"
LANDS = "30 0 * * *"
DAILY = "30 1 * * *"
RETENTION = "0 4 * * *"
EVALUATION = "0 3 * * 1"
TUNING = "0 4 * * 1"
MAINTENANCE = "0 5 * * 0"

# Tables Kafka feeds continuously (unpartitioned in Dagster): the day is in them once they were written
# after the day closed.
STREAMED = AssetSelection.assets(["bronze", "user_events"], ["bronze", "impressions"])
# Inputs a table reads when present and does without otherwise (before the first weekly tuning the
# settings' defaults serve; before the first evaluation, the fixed cold start): they never hold a day back.
OPTIONAL = AssetSelection.assets(["gold", "tuning"], ["gold", "evaluation"])
KAFKA_INGESTION = (
    ("bronze", "user_events"), ("bronze", "user_events_rejected"),
    ("bronze", "impressions"), ("bronze", "impressions_rejected"),
)  # fmt: skip
CONTENT_TRACK = (
    ("silver", "episodes"), ("silver", "transcripts"), ("gold", "episode_embeddings"),
    ("gold", "episode_similarity"),
)  # fmt: skip
# Tables rewritten whole rather than by day (unpartitioned in Dagster).
WHOLE_TABLES = AssetSelection.assets(*KAFKA_INGESTION, *CONTENT_TRACK)
# The first step of the content track reads a daily table: it starts once bronze has *landed*, never in
# the tick that asks for bronze (that would be a second run racing the first).
LANDED_SNAPSHOTS = AssetSelection.assets(["bronze", "episodes"])


def on_the_tick(cron: str) -> AutomationCondition:
    """The newest partition, once per tick of ``cron`` (a tick missed while waiting is kept, not lost),
    with nothing it reads or writes still running."""
    return (
        AutomationCondition.in_latest_time_window()
        & AutomationCondition.cron_tick_passed(cron, UTC).since_last_handled()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    )


def input_of_the_day() -> AutomationCondition:
    """Every input is there for the day, the Kafka-fed ones were written after the day closed, and every
    blocking check upstream passed. A dated input may be asked for in the same tick (it then runs
    first, in the same run); a whole-table input (Kafka-fed, content) must be there already and not
    about to be rewritten — it would be a second run, racing this one."""
    will_run = AutomationCondition.will_be_requested()
    dated = AutomationCondition.all_deps_match(~AutomationCondition.missing() | will_run).ignore(
        OPTIONAL | WHOLE_TABLES
    )
    whole = AutomationCondition.all_deps_match(~AutomationCondition.missing() & ~will_run).allow(WHOLE_TABLES)
    drained = AutomationCondition.all_deps_match(
        AutomationCondition.newly_updated().since(AutomationCondition.cron_tick_passed(DAY_CLOSES, UTC))
    ).allow(STREAMED)
    # An input asked for in this tick runs its blocking checks in the same run, which stops what is
    # downstream if one fails.
    passed = AutomationCondition.all_checks_match(AutomationCondition.check_passed(), blocking_only=True)
    checked = AutomationCondition.all_deps_match(passed | will_run).ignore(OPTIONAL)
    return (dated & whole & drained & checked).with_label("the day's input is there and checked")


def daily(cron: str) -> AutomationCondition:
    return (on_the_tick(cron) & input_of_the_day()).with_label(f"daily at {cron} UTC, after its input")


def scheduled(cron: str) -> AutomationCondition:
    return on_the_tick(cron).with_label(f"at {cron} UTC")


def drain(cron: str) -> AutomationCondition:
    """A run per tick whatever the topic holds: the drain's record is what tells the daily path the day
    is in bronze. The topics themselves are written outside Dagster, so they are not waited for."""
    ticked = AutomationCondition.cron_tick_passed(cron, UTC).since_last_handled()
    return (ticked & ~AutomationCondition.in_progress()).with_label(f"drain the topics at {cron} UTC")


def eager_content() -> AutomationCondition:
    """After a bronze snapshot lands, and after each step before it in the same run; never while an
    input is being written. A table merely missing does not start it: with no snapshot there is
    nothing to build from, and the next landing builds it."""
    landed = AutomationCondition.any_deps_match(AutomationCondition.newly_updated())
    step_before = AutomationCondition.any_deps_match(AutomationCondition.will_be_requested()).ignore(
        LANDED_SNAPSHOTS
    )
    return (
        (landed | step_before).since_last_handled()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label("when a bronze snapshot lands")


def conditions() -> dict[AssetKey, AutomationCondition]:
    """Every automated table and its condition."""
    plan: dict[tuple[str, ...], AutomationCondition] = {
        ("bronze", "episodes"): scheduled(LANDS),
        **{key: drain(DRAIN) for key in KAFKA_INGESTION},
        **{key: eager_content() for key in CONTENT_TRACK},
        **{tuple(key): daily(DAILY) for key in DAILY_ASSETS},
        ("monitoring", "retention"): scheduled(RETENTION),
        ("gold", "evaluation"): daily(EVALUATION),
        ("gold", "tuning"): daily(TUNING),
        ("monitoring", "lake_maintenance"): scheduled(MAINTENANCE),
    }
    return {AssetKey(list(key)): condition for key, condition in plan.items()}


def with_automation(defs: Definitions, settings: PodrecSettings) -> Definitions:
    """``defs`` with each table's condition and the sensor that has the daemon evaluate them."""
    plan = conditions()

    def automate(spec: AssetSpec) -> AssetSpec:
        condition = plan.get(spec.key)
        return spec if condition is None else spec.replace_attributes(automation_condition=condition)

    automated = defs.map_resolved_asset_specs(func=automate)
    running = DefaultSensorStatus.RUNNING if settings.automation.running else DefaultSensorStatus.STOPPED
    sensor = AutomationConditionSensorDefinition(
        "automation_sensor",
        target=AssetSelection.assets(*plan),
        minimum_interval_seconds=30,
        default_status=running,
        description=(
            "Evaluates every table's automation condition (podrec_assets/automation.py) and launches what "
            "is due: the day's landing, the drains, the content track, the daily path, retention, and the "
            "weekly evaluation, tuning and maintenance."
        ),
    )
    return Definitions.merge(automated, Definitions(sensors=[sensor]))
