"""`flask retention purge`: delete the calls that ended before a cutoff now, or count them."""

from __future__ import annotations

import math

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from lifeline.ivr.errors import StoreError
from lifeline.ivr.retention import PurgeReport
from lifeline.ivr.store import MEMORY_URL, PURGE_KINDS
from lifeline.ivr.timefmt import iso

retention = AppGroup("retention", help="Keeping calls only as long as needed (LIFELINE_RETENTION_DAYS).")


def _finite(days: float | None) -> float | None:
    """The period as given, unless it is not a number of days at all (nan compares false with
    every bound, so a range alone lets it through, and a cutoff of nan matches every call)."""
    if days is not None and not math.isfinite(days):
        raise click.BadParameter(f"{days} is not a number of days (give e.g. 30)")
    return days


@retention.command("purge")
@click.option("--older-than", "days", type=click.FloatRange(min=0, max=36500), default=None, metavar="DAYS",
              callback=lambda _ctx, _param, value: _finite(value),
              help="Calls that ended more than DAYS ago (default: LIFELINE_RETENTION_DAYS).")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@with_appcontext
def purge(days: float | None, dry_run: bool) -> None:
    """Delete every call that ended before the cutoff, with its events, transcript, summary and recording."""
    lifeline = current_app.extensions["lifeline"]
    if lifeline.settings.database_url == MEMORY_URL:
        # Its own empty memory: the calls are in the serving process, whose monitor purges them.
        raise click.ClickException("DATABASE_URL=memory:// keeps calls inside the serving process, so this "
                                   "command would find none; the server's monitor purges them hourly")
    days = lifeline.settings.retention_days if days is None else days
    if days is None:
        raise click.UsageError("no retention period: give --older-than DAYS, or set LIFELINE_RETENTION_DAYS")
    purger = lifeline.monitor.retention
    shown = [0]

    def progress(report: PurgeReport) -> None:
        # A line per batch that found calls, so a long first purge shows it is moving.
        if report.calls + report.held > shown[0]:
            shown[0] = report.calls + report.held
            verb = "counted" if dry_run else "deleted"
            click.echo(f"  ... {report.calls} calls {verb} so far ({report.batches} batches)", err=True)

    try:
        report = purger.purge(days, dry_run=dry_run, progress=progress)
    except StoreError as exc:
        done = "" if dry_run else "; what was deleted before it stays deleted, run the command again to go on"
        raise click.ClickException(f"the call store is unavailable ({' '.join(str(exc).split())}): check "
                                   f"that the database at DATABASE_URL is up{done}") from exc
    click.echo(summary(report, days))
    if report.recordings_failed:
        raise SystemExit(1)  # rows are gone, some files are not: the log names each and why


def summary(report: PurgeReport, days: float) -> str:
    """What a purge deleted (or would delete), one kind per line."""
    head = "Would delete (dry run)" if report.dry_run else "Deleted"
    lines = [f"{head}: calls that ended before {iso(report.cutoff)} ({days:g} days ago)"]
    lines += [f"  {kind}: {report.rows.get(kind, 0)}" for kind in PURGE_KINDS]
    lines.append(f"  recordings: {report.recordings}")
    if report.recordings_failed:
        lines.append("  recordings not deleted (the log says why; tried again at the next purge): "
                     f"{report.recordings_failed}")
    if report.held:
        lines.append(f"  calls kept while a command, webhook or email of theirs is still owed: {report.held}")
    return "\n".join(lines)


def register(app: Flask) -> None:
    """Add `flask retention` to the app's commands."""
    app.cli.add_command(retention)
