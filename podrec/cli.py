"""``podrec``: the command line beside Dagster's own CLI and UI."""

from __future__ import annotations

import json
import sys
from datetime import datetime

import click

from podrec import localinfra
from podrec.settings import load_settings


@click.group()
def main() -> None:
    """podrec — which podcast episodes next?"""


@main.group()
def infra() -> None:
    """The local Kafka broker and MongoDB-compatible server (FerretDB)."""


@infra.command("up")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for health.")
def infra_up(timeout: float) -> None:
    """Start the local services (a no-op for those already running)."""
    try:
        for st in localinfra.up(load_settings(), timeout_s=timeout):
            click.echo(st.describe())
    except localinfra.InfraError as exc:
        raise click.ClickException(str(exc)) from exc


@infra.command("down")
def infra_down() -> None:
    """Stop the local services and wait until no process is left."""
    stopped = localinfra.down(load_settings())
    click.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@infra.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def infra_status(as_json: bool) -> None:
    """Report each local service; exit 1 if any is not running and healthy."""
    statuses = localinfra.status(load_settings())
    if as_json:
        click.echo(json.dumps([st.__dict__ | {"running": st.running} for st in statuses]))
    else:
        for st in statuses:
            click.echo(st.describe())
    sys.exit(0 if all(st.healthy for st in statuses) else 1)


@main.command()
@click.option(
    "--date", "day", type=click.DateTime(["%Y-%m-%d"]), default=None,
    help="Partition to run (default: yesterday, UTC).",
)  # fmt: skip
def demo(day: datetime | None) -> None:
    """Run the daily job for one day on local defaults and print a summary."""
    from podrec.demo import last_complete_day, run_demo

    click.echo(run_demo(load_settings(), day.date() if day else last_complete_day()))


if __name__ == "__main__":
    main()
