"""``podrec``: the command line beside Dagster's own CLI and UI.

Every command that fails says so in one line on stderr — what failed and what to do — and exits
non-zero; ``podrec --debug …`` shows the traceback (and the Kafka client's own log) instead.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from podrec.lake.object_store import use_object_store
from podrec.settings import PROFILES, PodrecSettings, SettingsError, load_settings
from podrec_app import localinfra
from podrec_app.console import Console, log_path
from podrec_app.errors import explain
from podrec_app.instance_home import dagster_home

POSITIVE = click.IntRange(min=1)
PORT = click.IntRange(1, 65535)


class PodrecGroup(click.Group):
    """Turns any exception a command raises into a one-line error, unless ``--debug``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["podrec.args"] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            # One line, like every other failure, instead of click's usage block.
            where = exc.ctx.command_path if exc.ctx else "podrec"
            usage = click.ClickException(f"{exc.format_message()} (see `{where} --help`)")
            usage.exit_code = exc.exit_code
            raise usage from None
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            raise click.ClickException(explain(exc, command_path(ctx.meta["podrec.args"]))) from None


@click.group(cls=PodrecGroup)
@click.option("--debug", is_flag=True, help="On failure, show the traceback; show the Kafka client's log.")
def main(debug: bool) -> None:
    """podrec — which podcast episodes next?"""
    # librdkafka reports every refused connection; a command reports the failure once, in its error.
    kafka_log = logging.getLogger("podrec.kafka")
    if debug:
        logging.basicConfig(level=logging.INFO)
    else:
        kafka_log.addHandler(logging.NullHandler())
        kafka_log.propagate = False
    if os.environ.get("PODREC_PROFILE") == "cluster":
        # Its Dagster instance and its object store's keys, for this process and those it starts.
        os.environ.update(localinfra.cluster_environment(settings()))


def command_path(args: list[str]) -> str:
    """``podrec publish status`` from the command line's words (options and arguments left out)."""
    path: list[str] = []
    command: click.Command = main
    for word in (a for a in args if not a.startswith("-")):
        found = command.commands.get(word) if isinstance(command, click.Group) else None
        if found is None:
            break
        path.append(word)
        command = found
    return " ".join(["podrec", *path])


def settings(**overrides: Any) -> PodrecSettings:
    """The settings tree, or a one-line error naming the variable to fix."""
    try:
        loaded = load_settings(**overrides)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    use_object_store(loaded.lake)  # delta-rs and Arrow find an S3-API lake through AWS_* variables
    return loaded


def _profile_settings(profile: str | None) -> PodrecSettings:
    return settings(profile=profile) if profile else settings()


profile_option = click.option(
    "--profile",
    type=click.Choice(list(PROFILES)),
    default=None,
    help="Which stack: local, or cluster (each part a distributed engine). Default: PODREC_PROFILE or local.",
)


@main.group()
def infra() -> None:
    """The local services: Kafka, FerretDB and, on the cluster profile, a Spark standalone cluster,
    three SASL Kafka nodes and PostgreSQL behind an authenticated FerretDB."""


@infra.command("up")
@profile_option
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for health.")
def infra_up(profile: str | None, timeout: float) -> None:
    """Start the local services (a no-op for those already running)."""
    try:
        for st in localinfra.up(_profile_settings(profile), timeout_s=timeout):
            click.echo(st.describe())
    except localinfra.InfraError as exc:
        raise click.ClickException(str(exc)) from exc


@infra.command("down")
@profile_option
def infra_down(profile: str | None) -> None:
    """Stop the local services and wait until no process is left. Without --profile: the stack of
    PODREC_PROFILE and, if it was ever started, the cluster stack (so a plain `down` leaves nothing)."""
    chosen = [_profile_settings(profile)]
    if profile is None and chosen[0].profile != "cluster" and localinfra.cluster_stack_started():
        chosen.append(settings(profile="cluster"))
    stopped = [name for each in chosen for name in localinfra.down(each)]
    click.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@infra.command("status")
@profile_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def infra_status(profile: str | None, as_json: bool) -> None:
    """Report each local service; exit 1 if any is not running and healthy."""
    statuses = localinfra.status(_profile_settings(profile))
    if as_json:
        click.echo(json.dumps([st.__dict__ | {"running": st.running} for st in statuses]))
    else:
        for st in statuses:
            click.echo(st.describe())
    sys.exit(0 if all(st.healthy for st in statuses) else 1)


@main.command()
@click.option(
    "--days", default=7, show_default=True, type=POSITIVE, help="How many days, ending at --end-date."
)
@click.option(
    "--users", default=2000, show_default=True, type=POSITIVE, help="Size of the listener population."
)
@click.option(
    "--catalog", type=click.Choice(["auto", "sample", "podcastindex", "synthetic"]), default=None,
    help="Episode source (default: PODREC_CATALOG). Give the pipeline the same catalog.",
)  # fmt: skip
@click.option(
    "--episodes", default=None, type=POSITIVE,
    help="Synthetic catalog: its size (PODREC_SYNTHETIC_EPISODES). Others: only the E most popular.",
)  # fmt: skip
@click.option(
    "--shows", default=None, type=POSITIVE, help="Synthetic catalog: shows (PODREC_SYNTHETIC_SHOWS)."
)
@click.option("--seed", default=42, show_default=True, help="Same seed, same events.")
@click.option("--end-date", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Default: yesterday (UTC).")
def simulate(
    days: int, users: int, catalog: str | None, episodes: int | None, shows: int | None, seed: int,
    end_date: datetime | None,
) -> None:  # fmt: skip
    """Produce simulated listening events into Kafka (the events topic)."""
    from podrec.ingest.producer import simulate_to_kafka
    from podrec_app.runs import last_complete_day
    from resources import build_resources

    config = settings()
    if catalog:
        config = config.with_(catalog=catalog)
    synthetic = config.catalog == "synthetic"
    if synthetic and (episodes or shows):
        size = {k: v for k, v in (("episodes", episodes), ("shows", shows)) if v}
        config = config.with_(synthetic=size)
    resources = build_resources(config)
    kafka = resources["kafka"]
    end = end_date.date() if end_date else last_complete_day()
    dates = [end - timedelta(days=days - 1 - i) for i in range(days)]
    catalog, _ = resources["episode_source"].snapshot(end)
    try:
        sent = simulate_to_kafka(
            kafka.producer(), kafka.events_topic, catalog, dates, users,
            epoch=config.partitions.start, seed=seed, n_episodes=None if synthetic else episodes,
        )  # fmt: skip
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"produced {sum(sent.values())} events for {days} day(s) to {kafka.events_topic}")


@main.command("sample-audio")
def sample_audio() -> None:
    """Synthesise speech for the sample episodes that have an offline Vosk model (Korean)."""
    from podrec.content import sample_audio as audio
    from podrec.content.podcastindex import sample_catalog_rows

    audio_path = settings().data.audio_path
    try:
        written = audio.generate(sample_catalog_rows(), audio_path)
    except audio.SpeechSynthesisUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{len(written)} sample episodes have audio in {audio_path}")


@main.command("import-events")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--like-rating", default=4.0, show_default=True, help="Ratings at or above: complete + like.")
@click.option("--skip-rating", default=2.0, show_default=True, help="Ratings at or below: early skip.")
def import_events(path: Path, like_rating: float, skip_rating: float) -> None:
    """Import an interaction log (CSV/Parquet: user, item, timestamp, rating or event_type) into Kafka.

    Rows that cannot be events as written (a missing id, timestamp or rating) are not sent: they go to
    bronze.user_events_rejected with their reason."""
    from datetime import UTC

    from podrec.ingest.importer import (
        ImportFormatError,
        check_log,
        count_events,
        log_to_events,
        read_log,
        rejected_rows,
    )
    from podrec.ingest.producer import produce_events
    from podrec.lake.delta import insert_new_arrow
    from podrec.lake.paths import table_uri
    from podrec.privacy import Suppression
    from resources import build_resources

    config = settings()
    kafka = build_resources(config)["kafka"]
    try:
        log = check_log(*read_log(path), forgotten=Suppression(config.lake.root).hashes())
    except ImportFormatError as exc:
        raise click.ClickException(str(exc)) from None
    if log.total == 0:
        raise click.ClickException(f"{path.name} has a header but no rows: nothing to import")
    producer = kafka.producer()  # the broker answers before anything is written
    if log.rejected:
        insert_new_arrow(
            rejected_rows(log, path.name, datetime.now(UTC)),
            table_uri(config.lake.root, "bronze", "user_events_rejected"),
            ["kafka_partition", "kafka_offset", "error"], "event_date",
        )  # fmt: skip
    total = count_events(log, like_rating, skip_rating)
    sent = produce_events(producer, kafka.events_topic, log_to_events(log, like_rating, skip_rating), total,
                          description=path.name)  # fmt: skip
    click.echo(f"imported {len(log.rows)} interactions from {path} as {sent} events on {kafka.events_topic}")
    if log.rejected:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(log.reasons().items()))
        click.echo(
            f"rejected {len(log.rejected)} of {log.total} rows ({reasons}) → bronze.user_events_rejected"
        )


@main.command()
@click.option(
    "--replay", "replay", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Rebuild this event_date."
)
@click.option(
    "--force", is_flag=True,
    help="Replay even when the day holds rows the topic no longer has (they are deleted).",
)  # fmt: skip
def ingest(replay: datetime | None, force: bool) -> None:
    """Consume new events from Kafka into bronze.user_events / bronze.user_events_rejected.

    With --replay, rebuild that event_date from what the topic still holds; refused when the topic's
    retention already deleted some of the day's records (they would be lost), unless --force."""
    from podrec_app.runs import ingest_pending

    if force and replay is None:
        raise click.UsageError("--force only applies to --replay")
    loaded = settings()
    console = Console(log_path(loaded, "ingest"))
    with console.quiet():
        report = ingest_pending(loaded, replay.date() if replay else None, force=force)
    _said_where(console)
    click.echo(json.dumps(report.__dict__, default=str))


@main.command()
@click.option("--json", "as_json", is_flag=True, help='{"tables": [...]} on stdout, one object per table.')
def tables(as_json: bool) -> None:
    """Every contract table of the lake: its URI, Delta version, rows and newest day partition.

    Read from each table's Delta log (delta-rs), no Spark; a table not written yet shows as missing."""
    from podrec.lake.tables import describe

    states = describe(settings().lake.root)
    if as_json:
        click.echo(json.dumps({"tables": [t.as_dict() for t in states]}, indent=2))
        return
    rows = [
        [t.name, "missing", "-", "-", t.uri]
        if t.missing
        else [t.name, t.version, t.rows, t.newest_partition or "-", t.uri]
        for t in states
    ]
    click.echo(_table(["table", "version", "rows", "newest partition", "uri"], rows))


@main.command()
@click.option(
    "--protocol",
    type=click.Choice(["time", "stratified", "published"]),
    default="time",
    show_default=True,
    help="podrec's time or stratified split, or the published tables' (every held-out interaction relevant).",
)
@click.option(
    "--k", default=10, show_default=True, type=POSITIVE, help="List length the metrics are taken at."
)
@click.option("--json", "as_json", is_flag=True, help="The full report as JSON on stdout.")
@click.option("--no-ingest", is_flag=True, help="Evaluate what is in the lake without reading Kafka first.")
def evaluate(protocol: str, k: int, as_json: bool, no_ingest: bool) -> None:
    """Offline evaluation of the serving setting: every policy (hybrid, als_only, content_only, popular…)."""
    from podrec.ingest.producer import BrokerUnreachable
    from podrec_app import runs

    loaded = settings()
    _use_dagster_home(loaded)
    console = Console(log_path(loaded, "evaluate"))
    try:
        # An offline evaluation of a log reads all of it (the weekly asset reads its bounded window).
        config = {"protocols": [protocol], "k": k, "window_days": 0}
        with console.quiet():
            out = runs.evaluate(loaded, config, ingest=not no_ingest)
    except BrokerUnreachable as exc:
        raise click.ClickException(f"{exc}; or use --no-ingest to work on what the lake holds") from None
    except (runs.NothingToEvaluate, runs.RunFailed, ValueError) as exc:
        raise click.ClickException(f"{exc} (its log: {console.log_path})") from exc
    _said_where(console)
    report = out["report"][protocol]
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"{protocol} split, K={k}: {report['users']} users, {report['items']} episodes, "
               f"{report['cold_items']} held out as new, {report['new_variants']} as new variants "
               f"(run {out['run_id']})")  # fmt: skip
    click.echo(f"setting: {out['setting_why']}")
    click.echo(
        _table(
            ["policy", *report["policies"]["hybrid"]],
            [[p, *v.values()] for p, v in report["policies"].items()],
        )
    )
    click.echo("cold-start strategies (hybrid):")
    click.echo(
        _table(
            ["strategy", "ndcg", "cold_recall"], [[s, *v.values()] for s, v in report["cold_start"].items()]
        )
    )
    click.echo(f"rule (best cold recall within 2% NDCG of als_only): {report['recommended_cold_start']}")
    if report["ablations"]:
        click.echo("hybrid without a source:")
        click.echo(
            _table(
                ["ablation", "ndcg", "recall"],
                [[a, v["ndcg"], v["recall"]] for a, v in report["ablations"].items()],
            )
        )
    if report["rerank"]:
        click.echo("re-ranking trade-off (hybrid):")
        click.echo(
            _table(
                ["weight", "ndcg", "diversity", "calibration"],
                [[w, *v.values()] for w, v in report["rerank"].items()],
            )
        )
        click.echo(f"rule (most diverse within 2% NDCG of none): {report['recommended_rerank_weight']}")


@main.command()
@click.option(
    "--protocol", type=click.Choice(["time", "stratified", "published"]), default=None,
    help="Split the sweep is measured on (default PODREC_TUNING_PROTOCOL: time).",
)  # fmt: skip
@click.option(
    "--alpha", "alphas", multiple=True, type=click.FloatRange(min=0, min_open=True),
    help="Default PODREC_TUNING_ALPHAS.",
)  # fmt: skip
@click.option(
    "--reg-param", "reg_params", multiple=True, type=click.FloatRange(min=0),
    help="Default PODREC_TUNING_REG_PARAMS.",
)  # fmt: skip
@click.option("--rank", "ranks", multiple=True, type=POSITIVE, help="Default PODREC_TUNING_RANKS.")
@click.option(
    "--als-weight", "als_weights", multiple=True, type=click.FloatRange(0, 1),
    help="Default PODREC_TUNING_ALS_WEIGHTS.",
)  # fmt: skip
@click.option(
    "--rerank-weight",
    "rerank_weights",
    multiple=True,
    type=click.FloatRange(0, 1),
    help="Default PODREC_TUNING_RERANK_WEIGHTS.",
)
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-ingest", is_flag=True)
def tune(
    protocol: str | None, alphas: tuple[float, ...], reg_params: tuple[float, ...], ranks: tuple[int, ...],
    als_weights: tuple[float, ...], rerank_weights: tuple[float, ...], as_json: bool, no_ingest: bool,
) -> None:  # fmt: skip
    """Run the tuning asset on the whole log: sweep, compare with the serving setting, accept by the rule.

    An accepted setting serves every later fit, list and evaluation (unless PODREC_TUNING_PIN)."""
    from podrec.ingest.producer import BrokerUnreachable
    from podrec_app import runs

    grid = {"protocol": protocol, "alphas": alphas, "reg_params": reg_params, "ranks": ranks,
            "als_weights": als_weights, "rerank_weights": rerank_weights}  # fmt: skip
    config = {name: list(v) if isinstance(v, tuple) else v for name, v in grid.items() if v}
    loaded = settings()
    _use_dagster_home(loaded)
    console = Console(log_path(loaded, "tune"))
    try:
        with console.quiet():
            out = runs.tune(loaded, {**config, "window_days": 0}, ingest=not no_ingest)
    except BrokerUnreachable as exc:
        raise click.ClickException(f"{exc}; or use --no-ingest to work on what the lake holds") from None
    except (runs.NothingToEvaluate, runs.RunFailed, ValueError) as exc:
        raise click.ClickException(f"{exc} (its log: {console.log_path})") from exc
    _said_where(console)
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
        return
    click.echo(out["trials"])
    click.echo(out["reason"])
    click.echo(f"serving from now on: {out['serving']}")


@main.group()
def publish() -> None:
    """The versions published to MongoDB: which one serves, and going back to an earlier one (serving only
    moves forward by itself: a publish of an older day is kept but held)."""


@publish.command("status")
def publish_status() -> None:
    """List the versions, newest first, with their day and gate result; * marks the one serving, and a
    note says which checks failed or why a version is held."""
    from podrec.serving.publish import PUBLISHES, active_version
    from resources import build_resources

    db = build_resources(settings())["mongo"].db()
    active = active_version(db)
    rows = []
    for r in db[PUBLISHES].find().sort("_id", -1):
        lists = (r.get("counts") or {}).get("recommendations")
        failed = ", ".join((r.get("gate") or {}).get("failures") or [])
        held = r.get("held") if r.get("status") == "staged" else None
        note = f"failed: {failed}" if failed else f"held: {held}" if held else "-"
        serving = "*" if r["_id"] == active else ""
        rows.append([serving, r["_id"], r.get("rec_date"), r.get("status"), lists, note])
    click.echo(_table(["", "version", "rec_date", "status", "lists", "note"], rows))


@publish.command("activate")
@click.argument("version")
@click.option("--force", is_flag=True, help="Serve it even though its day is older than the serving one's.")
def publish_activate(version: str, force: bool) -> None:
    """Serve VERSION now, e.g. a held one. A day older than the serving one's needs --force; a version
    that failed its gate never serves."""
    from podrec.serving.publish import OlderThanActive, PublishError, activate
    from resources import build_resources

    db = build_resources(settings())["mongo"].db()
    try:
        replaced = activate(db, version, older=force)
    except OlderThanActive as exc:
        raise click.ClickException(f"{exc}; add --force to serve it anyway (going back is explicit)") from exc
    except PublishError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"serving {version} (was {replaced})")


@publish.command("rollback")
@click.argument("version", required=False)
def publish_rollback(version: str | None) -> None:
    """Serve VERSION again (default: the one before the active one, by day and then publish time)."""
    from podrec.serving.publish import PublishError, rollback
    from resources import build_resources

    db = build_resources(settings())["mongo"].db()
    try:
        active, replaced = rollback(db, version)
    except PublishError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"serving {active} (was {replaced})")


@main.command()
@click.argument("user_id")
def forget(user_id: str) -> None:
    """Remove listener USER_ID from every table, saved ALS model and published version (audit in
    monitoring.forget_audit)."""
    from podrec.ids import id_error
    from podrec.privacy import forget as forget_listener
    from resources import build_resources

    if error := id_error("user_id", user_id):
        raise click.BadParameter(f"{error}: no listener can have it", param_hint="USER_ID")
    config = settings()
    report = forget_listener(config.lake.root, build_resources(config)["mongo"].db(), user_id)
    click.echo(_table(["where", "removed"], sorted(report.removed.items())))
    click.echo(
        f"removed {report.total} rows, factors and lists of listener sha256:{report.user_sha256[:16]}…; "
        "audited in monitoring.forget_audit. Older Delta versions keep them until the weekly "
        "monitoring/lake_maintenance vacuums them (docs/operations.md, Privacy)."
    )


@main.command()
@click.option(
    "--days",
    default=14,
    show_default=True,
    type=POSITIVE,
    help="Days of the experiment to run (or resume) up to.",
)
@click.option("--users", default=2000, show_default=True, help="Size of the listener population.")
@click.option(
    "--episodes", default=None, type=int, help="Synthetic catalog size (PODREC_SYNTHETIC_EPISODES)."
)
@click.option("--shows", default=None, type=int, help="Synthetic catalog shows (PODREC_SYNTHETIC_SHOWS).")
@click.option("--seed", default=42, show_default=True, help="Same seed, same listeners and reactions.")
@click.option("--warmup-days", default=7, show_default=True, help="Organic days before the experiment.")
@click.option(
    "--exploration-share", default=None, type=float,
    help="Share of lists with a new-episode slot (PODREC_EXPLORATION_SHARE).",
)  # fmt: skip
def loop(
    days: int, users: int, episodes: int | None, shows: int | None, seed: int, warmup_days: int,
    exploration_share: float | None,
) -> None:  # fmt: skip
    """Simulated listeners react to the lists served each day, through ingestion and the daily job.

    Runs on the synthetic catalog (new episodes arrive every day). Resumable: run it again to continue."""
    from podrec_app.loop import LoopFailed, run_loop
    from podrec_app.readout import report_text

    own = settings()
    _use_dagster_home(own)
    synthetic = {k: v for k, v in (("episodes", episodes), ("shows", shows)) if v is not None}
    exploration = {} if exploration_share is None else {"share": exploration_share}
    own = own.with_(catalog="synthetic", synthetic=synthetic, exploration=exploration)
    started = datetime.now()
    try:
        run_loop(own, days, users, seed, warmup_days, click.echo)
    except LoopFailed as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"loop done in {(datetime.now() - started).total_seconds() / 60:.1f} min\n")
    click.echo(report_text(own))


@main.group()
def ab() -> None:
    """The A/B experiment."""


@ab.command("report")
@click.option("--json", "as_json", is_flag=True, help="The readout as JSON on stdout.")
def ab_report(as_json: bool) -> None:
    """The experiment's readout: hybrid - als_only with 95% intervals, and the sample-ratio test."""
    from podrec_app.readout import NoExperiment, report_json, report_text

    try:
        click.echo(json.dumps(report_json(settings()), indent=2) if as_json else report_text(settings()))
    except NoExperiment as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=PORT)
@click.option("--workers", type=POSITIVE, help="uvicorn worker processes [default: PODREC_API_WORKERS].")
def serve(host: str, port: int, workers: int | None) -> None:
    """The recommendation API (OpenAPI docs at /docs) over the MongoDB version that serves.

    Callers need a bearer token (`podrec token`); each request is one JSON line on stdout (api.telemetry,
    in place of uvicorn's access log), and /metrics sums every worker's counts."""
    import uvicorn

    own = settings()
    if own.api.metrics:
        # Every worker writes its metrics into one folder, emptied first: a previous run's counts would add
        # to these. Set before anything imports prometheus_client, which reads it once, at import.
        default = own.data.path / "api" / f"metrics-{port}"
        folder = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(default))
        from api.telemetry import prepare_multiprocess_dir

        prepare_multiprocess_dir(folder)
    uvicorn.run(
        "api.app:create_app", factory=True, host=host, port=port, workers=workers or own.api.workers,
        log_level="warning", access_log=False,
    )  # fmt: skip


@main.command()
@click.argument("subject")
@click.option("--service", is_flag=True, help="A service's token (reads any list); SUBJECT names it.")
@click.option(
    "--expires-in", default=3600, show_default=True, type=click.IntRange(1, 366 * 86_400),
    help="Seconds until the token expires.",
)  # fmt: skip
def token(subject: str, service: bool, expires_in: int) -> None:
    """A development token for the API: listener SUBJECT's own (reads their list only), or a service's.

    HS256 with PODREC_API_AUTH_KEY (minted into the data folder when unset, where `podrec serve` finds it);
    printed alone on stdout: curl -H "Authorization: Bearer $(podrec token u1)" …"""
    from api.auth import mint_token

    try:
        click.echo(mint_token(settings(), subject, "service" if service else "listener", expires_in))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8501, show_default=True, type=PORT)
def dashboard(host: str, port: int) -> None:
    """The Streamlit dashboard: the lake's tables through DuckDB, in-process, no Spark."""
    import subprocess

    import dashboard

    app = Path(dashboard.__file__).with_name("app.py")
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", host,
               "--server.port", str(port), "--server.headless", "true",
               "--browser.gatherUsageStats", "false"]  # fmt: skip
    raise SystemExit(subprocess.call(command))


@main.command()
@click.option(
    "--out", "out_dir", default="docs/screenshots", show_default=True, type=click.Path(path_type=Path)
)
@click.option("--api-port", default=8765, show_default=True, type=PORT)
@click.option("--dashboard-port", default=8766, show_default=True, type=PORT)
def screenshots(out_dir: Path, api_port: int, dashboard_port: int) -> None:
    """Start the API and the dashboard on these settings, open both in headless Chromium, save PNGs."""
    from podrec_app.screenshots import (
        api_and_dashboard,
        api_docs_page,
        capture,
        dashboard_ab_page,
        dashboard_page,
    )

    with api_and_dashboard(api_port=api_port, dashboard_port=dashboard_port) as (api, board):
        shots = capture([dashboard_page(board), dashboard_ab_page(board), api_docs_page(api)], out_dir)
    for name, shot in shots.items():
        click.echo(f"{name}: {shot.path} ({shot.ready} drawn, {shot.failed} errors)")


@main.command("backfill")
@click.argument("job")
@click.option("--from", "start", help="First day (YYYY-MM-DD) of the range.")
@click.option("--to", "end", help="Last day (YYYY-MM-DD) of the range.")
@click.option("--partitions", help="Comma-separated days instead of a range (e.g. to re-run failed ones).")
def backfill_command(job: str, start: str | None, end: str | None, partitions: str | None) -> None:
    """Backfill JOB (e.g. daily) day by day through Dagster and wait for every run; exit 1 if any failed."""
    from podrec_app.backfill import BackfillError, backfill

    if not partitions and not (start and end):
        raise click.UsageError("give --from and --to, or --partitions")
    _use_dagster_home(settings())
    try:
        backfill_id, runs = backfill(job, start, end, partitions.split(",") if partitions else None)
    except BackfillError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backfill {backfill_id} of {job}:")
    click.echo(_table(["day", "status", "run"], [[r.partition, r.status, r.run_id] for r in runs]))
    failed = [r.partition for r in runs if r.status != "SUCCESS"]
    if failed:
        raise click.ClickException(
            f"{len(failed)} day(s) failed; fix and re-run them alone: podrec backfill {job} --partitions "
            + ",".join(failed)
        )


def _use_dagster_home(loaded: PodrecSettings) -> None:
    """Run in ``$DAGSTER_HOME``, or by default in the data folder's ``dagster_home`` — the default
    ``make`` gives it, so ``make dev`` shows what the command ran."""
    os.environ.setdefault("DAGSTER_HOME", str(dagster_home(loaded)))


def _said_where(console: Console) -> None:
    """Name the file Dagster's event log and Spark's output went to: on stderr, so ``--json`` keeps
    stdout to the JSON (a failed run's one-line error names it instead)."""
    click.echo(f"Dagster's and Spark's log: {console.log_path}", err=True)


def _table(header: list[str], rows: list[list[object]]) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=header, floatfmt=".4f", missingval="n/a")


@main.command()
@click.option(
    "--date", "day", type=click.DateTime(["%Y-%m-%d"]), default=None,
    help="Partition to run (default: yesterday, UTC).",
)  # fmt: skip
def demo(day: datetime | None) -> None:
    """A week of simulated listening through the daily job on local defaults, then a summary."""
    from podrec_app.demo import DemoFailed, run_demo
    from podrec_app.runs import last_complete_day

    loaded = settings()
    _use_dagster_home(loaded)
    try:
        click.echo(run_demo(loaded, day.date() if day else last_complete_day()))
    except DemoFailed as exc:
        raise click.ClickException(str(exc)) from None


if __name__ == "__main__":
    main()
