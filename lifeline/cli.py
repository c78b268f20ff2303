"""`flask monitor`: run the sweep of active calls on its own (a `worker:` process)."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext


@click.command("monitor")
@click.option("--once", is_flag=True, help="Run one sweep, print what it did, and exit.")
@with_appcontext
def monitor(once: bool) -> None:
    """Sweep active calls every LIFELINE_SWEEP_INTERVAL seconds (Ctrl-C to stop)."""
    lifeline = current_app.extensions["lifeline"]
    if lifeline.schema_problem:
        raise click.ClickException(lifeline.schema_problem)
    if once:
        click.echo(str(lifeline.monitor.sweep()))
        return
    click.echo(f"Sweeping active calls every {lifeline.monitor.interval_s:g} s; Ctrl-C to stop")
    try:
        lifeline.monitor.run_forever()
    except (KeyboardInterrupt, SystemExit):
        click.echo("monitor stopped")


def register(app: Flask) -> None:
    """Add the monitor's command to `flask`."""
    app.cli.add_command(monitor)
