"""`flask monitor`: run the sweep of active calls on its own (a `worker:` process)."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from lifeline.calls.monitor import SweepReport
from lifeline.ivr.store import MEMORY_URL


@click.command("monitor")
@click.option("--once", is_flag=True, help="Run one sweep, print what it did, and exit.")
@with_appcontext
def monitor(once: bool) -> None:
    """Sweep active calls every LIFELINE_SWEEP_INTERVAL seconds (Ctrl-C to stop)."""
    lifeline = current_app.extensions["lifeline"]
    if lifeline.schema_problem:
        raise click.ClickException(lifeline.schema_problem)
    if lifeline.settings.database_url == MEMORY_URL:
        # Its own empty memory: the calls are in the serving process, which sweeps them itself.
        raise click.ClickException("DATABASE_URL=memory:// keeps calls inside the serving process, so "
                                   "`flask monitor` would sweep none; the server's own monitor "
                                   "sweeps them (or set DATABASE_URL to sqlite:/// or postgresql://)")
    if once:
        report = lifeline.monitor.sweep()
        lifeline.sender.wait_idle(30)
        click.echo(describe(report, lifeline.sender.reachability.state))
        return
    click.echo(f"Sweeping active calls every {lifeline.monitor.interval_s:g} s; Ctrl-C to stop")
    try:
        lifeline.monitor.run_forever()
    except (KeyboardInterrupt, SystemExit):
        click.echo("monitor stopped")


def describe(report: SweepReport, telnyx: str = "ok") -> str:
    """A sweep's report as a person reads it, one figure per line."""
    lines = [
        f"swept {_count(report.swept, 'active call')}",
        f"resent {_count(report.resent, 'command')} the provider had not taken",
        f"escalated {_count(report.escalated, 'call')} on time-based rules",
        f"moved on from {_count(report.unstuck, 'transfer')} that got no outcome",
        f"closed {_count(report.closed, 'call')} the provider no longer knows",
    ]
    if report.polled:
        lines.append(f"fetched {_count(report.polled, 'message')} from the listening engine")
    if telnyx != "ok":
        lines.append(f"Telnyx is {telnyx}: see the error above for the fix")
    return "Sweep done:\n" + "\n".join(f"  {line}" for line in lines)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def register(app: Flask) -> None:
    """Add the monitor's command to `flask`."""
    app.cli.add_command(monitor)
