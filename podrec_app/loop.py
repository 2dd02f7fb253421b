"""``podrec loop``: simulated listeners react to the lists podrec serves them, day by day.

Each day of the experiment:
1. listeners who are active that day open their list — through the API itself (``api.app``, in
   process, its clock set to the listener's moment), so every list is logged as an impression on the
   impressions topic exactly as in production, exploration included;
2. they react: plays from the list (position bias, hidden taste, a liking for new episodes) carrying
   the impression's id, and organic listening besides — all produced to the events topic;
3. the day's catalog snapshot and its content (new episodes transcribed, embedded, related);
4. ingestion of both topics (the ``ingest_events`` job's assets), then the ``daily`` job's assets for
   the day: clean events, engagement, impressions, the ALS fit, every listener's list, the gated
   publish — the lists the next day serves — and the A/B analysis.
Steps 3 and 4 are one Dagster run per day (``loop_day``) with the checks that act: the serving gates
and the other blocking checks, and the sample-ratio check. The warning-only expectations and the drift
reports are left out — on a laptop they cost more than the day itself; the scheduled ``daily`` job
runs them.
Before the first day, ``warmup_days`` of organic listening build the first model (and each listener's
pre-experiment engagement, the CUPED covariate).

Resumable: ``<data>/loop/state.json`` records the loop's parameters and each finished day. Run the
same command again and it continues after the last finished day; a day cut short is redone, and what it
had already sent is rejected as duplicates (event ids and impression ids are derived from the day).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from dagster import AssetSelection, DagsterInstance, Definitions, define_asset_job

from podrec.ingest.producer import produce_events
from podrec.ingest.simulator import (
    Served,
    episodes_from_catalog,
    list_openings,
    make_users,
    react,
    simulate_day,
    taste_matrix,
)
from podrec.settings import PodrecSettings
from podrec_assets.calendar import partition_range_tags
from podrec_assets.daily import daily_selection
from podrec_assets.definitions import build_definitions

CONTENT = AssetSelection.assets(
    ["bronze", "episodes"], ["silver", "episodes"], ["silver", "transcripts"], ["gold", "episode_embeddings"],
    ["gold", "episode_similarity"],
)  # fmt: skip
INGEST = AssetSelection.assets(
    ["bronze", "user_events"], ["bronze", "user_events_rejected"], ["bronze", "impressions"],
    ["bronze", "impressions_rejected"],
)  # fmt: skip
ENGAGEMENT = AssetSelection.assets(["silver", "user_events"], ["silver", "daily_engagement"])


class LoopFailed(RuntimeError):
    """A run of the loop failed; the message names the day, the job and its run id."""


@dataclass
class LoopState:
    """What ``<data>/loop/state.json`` holds: the loop's parameters and the days it finished."""

    users: int
    seed: int
    warmup_days: int
    start: str  # first day of the experiment
    warmed_up: bool = False
    done: list[str] = field(default_factory=list)

    def next_day(self) -> date:
        return (
            date.fromisoformat(self.done[-1]) + timedelta(days=1)
            if self.done
            else date.fromisoformat(self.start)
        )


def state_path(settings: PodrecSettings) -> Path:
    return settings.data.path / "loop" / "state.json"


def load_state(settings: PodrecSettings, wanted: LoopState) -> LoopState:
    """The saved state if it is the same loop; refuses to mix two loops' parameters in one lake."""
    path = state_path(settings)
    if not path.exists():
        return wanted
    saved = LoopState(**json.loads(path.read_text()))
    mine = (saved.users, saved.seed, saved.warmup_days, saved.start)
    if mine != (wanted.users, wanted.seed, wanted.warmup_days, wanted.start):
        raise LoopFailed(
            f"{path} is a loop of {saved.users} listeners, seed {saved.seed}, {saved.warmup_days} warm-up "
            f"days, from {saved.start}: run it with the same parameters, or remove the file (and the lake) "
            "to start anew"
        )
    return saved


def save_state(settings: PodrecSettings, state: LoopState) -> None:
    path = state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2))
    tmp.replace(path)


def loop_definitions(settings: PodrecSettings) -> Definitions:
    """The code location plus the loop's two jobs: the warm-up's inputs, and a day's run (the catalog
    and content, ingestion, the daily job's assets) with the checks that act — blocking ones and the
    sample-ratio warning."""
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    daily = daily_selection().resolve(graph)
    acting = {
        key for key in graph.asset_check_keys
        if key.asset_key in daily and (graph.get_check_spec(key).blocking or key.name == "sample_ratio")
    }  # fmt: skip
    # A multi-check definition runs whole: its other checks come along with the one that acts.
    acting |= {other for key in acting for other in graph.assets_def_for_key(key).check_keys}
    day = (CONTENT | INGEST | daily_selection()).without_checks() | AssetSelection.checks(*acting)
    warmup = (CONTENT | INGEST | ENGAGEMENT).without_checks()
    return Definitions.merge(
        defs,
        Definitions(
            jobs=[
                define_asset_job("loop_warmup", selection=warmup),
                define_asset_job("loop_day", selection=day),
            ]
        ),
    )


@dataclass
class DayReport:
    day: date
    lists: int
    explored: int
    list_plays: int
    events: int
    seconds: float


class Clock:
    """The API's clock during the loop: the moment of the listener being served."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class Loop:
    def __init__(self, settings: PodrecSettings, state: LoopState, say: Callable[[str], None]) -> None:
        self.settings, self.state, self.say = settings, state, say
        self.defs = loop_definitions(settings)
        self.resources = self.defs.resources
        self.kafka = self.resources["kafka"]
        self.epoch = settings.partitions.start
        last = date.fromisoformat(state.start) + timedelta(days=400)
        catalog, _ = self.resources["episode_source"].snapshot(last)
        self.episodes = episodes_from_catalog(catalog, state.seed)
        self.users = make_users(state.users, state.seed, self.epoch)
        self.taste = taste_matrix(state.seed, len(self.users), sorted({e.topic for e in self.episodes}))

    def run_job(self, instance: DagsterInstance, name: str, day: date, **kwargs: Any) -> None:
        result = self.defs.resolve_job_def(name).execute_in_process(
            instance=instance, raise_on_error=False, **kwargs
        )
        if not result.success:
            raise LoopFailed(
                f"{day}: the {name} run failed (run id {result.run_id}); see it in the Dagster UI"
            )

    def organic(self, day: date) -> list[dict[str, Any]]:
        return simulate_day(day, self.users, self.episodes, self.state.seed, self.taste)

    def warm_up(self, instance: DagsterInstance) -> None:
        """Organic listening before the experiment, its catalog and content, and the first lists."""
        start = date.fromisoformat(self.state.start)
        days = [start - timedelta(days=self.state.warmup_days - i) for i in range(self.state.warmup_days)]
        began = time.perf_counter()
        sent = sum(
            produce_events(self.kafka.producer(), self.kafka.events_topic, self.organic(d), progress=False)
            for d in days
        )
        tags = partition_range_tags(days[0].isoformat(), days[-1].isoformat())
        self.run_job(instance, "loop_warmup", days[-1], tags=tags)
        self.run_job(instance, "loop_day", days[-1], partition_key=days[-1].isoformat())
        self.say(
            f"warm-up {days[0]} .. {days[-1]}: {sent} organic events from {len(self.users)} listeners, "
            f"first lists published ({time.perf_counter() - began:.0f} s)"
        )

    def serve(
        self, client: Any, clock: Clock, day: date, organic: list[dict[str, Any]]
    ) -> tuple[dict[str, Served], int]:
        """Every listener who opens their list asks the API for it, at their own moment of the day;
        the lists, and how many of their places were exploring ones."""
        from api.auth import bearer

        locales = {u.user_id: u.locale for u in self.users}
        served, explored = {}, 0
        # A service's token, as a backend asking for its listeners would hold; one per day outlives the day.
        headers = {"X-Request-Id": f"loop-{day.isoformat()}", **bearer(self.settings, "podrec-loop")}
        for user_id, at in sorted(list_openings(day, organic, self.state.seed).items(), key=lambda x: x[1]):
            clock.now = at
            response = client.get(
                f"/users/{user_id}/recommendations", params={"locale": locales[user_id]}, headers=headers
            )
            if response.status_code != 200:
                raise LoopFailed(
                    f"{day}: the API answered {response.status_code} for {user_id}: {response.text}"
                )
            body = response.json()
            served[user_id] = Served(body["impression_id"], at, [i["episode_id"] for i in body["items"]])
            explored += sum(bool(i["explored"]) for i in body["items"])
        return served, explored

    def day(self, instance: DagsterInstance, client: Any, clock: Clock, day: date) -> DayReport:
        began = time.perf_counter()
        organic = self.organic(day)
        served, explored = self.serve(client, clock, day, organic)
        reactions = react(day, self.users, self.episodes, self.state.seed, self.taste, served)
        events = sorted([*organic, *reactions], key=lambda e: (e["occurred_at"], e["event_id"]))
        produce_events(self.kafka.producer(), self.kafka.events_topic, events, progress=False)
        log = client.app.state.impressions
        if not log.drain(300):
            raise LoopFailed(f"{day}: impressions still waiting for Kafka after 300 s: {log.metrics()}")
        self.run_job(instance, "loop_day", day, partition_key=day.isoformat())
        return DayReport(
            day, len(served), explored,
            len({e["impression_id"] + e["episode_id"] for e in reactions if e["event_type"] == "play"}),
            len(events), time.perf_counter() - began,
        )  # fmt: skip


def run_loop(
    settings: PodrecSettings, days: int, users: int, seed: int, warmup_days: int, say: Callable[[str], None]
) -> list[DayReport]:
    """Run (or resume) the loop up to ``days`` experiment days; one line per day through ``say``."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    start = settings.partitions.start + timedelta(days=warmup_days)
    state = load_state(settings, LoopState(users, seed, warmup_days, start.isoformat()))
    last = start + timedelta(days=days - 1)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    if last > yesterday:
        raise LoopFailed(
            f"{days} days from {start} end {last}, after yesterday ({yesterday}): move "
            "PODREC_PARTITIONS_START back or ask for fewer days"
        )
    loop = Loop(settings, state, say)
    reports = []
    clock = Clock()
    # No access log from the API in process: its line per list would bury the loop's own report.
    api = create_app(settings.with_(api={"access_log": False}), clock=clock)
    with DagsterInstance.get() as instance, TestClient(api) as client:
        if not state.warmed_up:
            loop.warm_up(instance)
            state.warmed_up = True
            save_state(settings, state)
        while (day := state.next_day()) <= last:
            report = loop.day(instance, client, clock, day)
            state.done.append(day.isoformat())
            save_state(settings, state)
            reports.append(report)
            say(
                f"{day} (day {len(state.done)}/{days}): {report.lists} lists served ({report.explored} "
                f"exploring slots), {report.list_plays} plays from lists, {report.events} events "
                f"({report.seconds:.0f} s)"
            )
    return reports
