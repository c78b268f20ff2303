"""`flask events redeliver`: send stored events to the webhook receivers again."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from lifeline.ivr.errors import ProviderError
from lifeline.ivr.timefmt import parse_time

from .dialout import DialError

events = AppGroup("events", help="The conversation's events going out (webhooks).")


def _when(value: str) -> float:
    """A command-line time (unix seconds or ISO-8601; no zone means UTC) as epoch seconds."""
    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is neither unix seconds nor an ISO-8601 time "
                                 "(e.g. 2026-11-30T06:00:00Z)") from exc


@events.command("redeliver")
@click.option("--since", required=True, help="Events stored from this time (ISO-8601 or unix seconds).")
@click.option("--until", default=None, help="... up to this time (default: now).")
@click.option("--url", default=None,
              help="Only this http(s) receiver (default: every LIFELINE_EVENT_WEBHOOKS URL).")
@with_appcontext
def redeliver(since: str, until: str | None, url: str | None) -> None:
    """Queue stored events for delivery again, in order; the running app's workers send them."""
    outputs = current_app.extensions["conversation"]
    # The app's workers deliver only while webhooks are on (LIFELINE_EVENT_WEBHOOKS, with the
    # LIFELINE_EVENT_SECRET that signs each delivery): without them nothing queued would go out.
    if not outputs.webhooks.enabled:
        raise click.UsageError("no receivers: set LIFELINE_EVENT_WEBHOOKS and LIFELINE_EVENT_SECRET "
                               "as the running app has them")
    if url is not None and not url.startswith(("http://", "https://")):
        raise click.UsageError(f"--url {url!r} is not an http(s) URL: give the receiver's full URL")
    receivers = outputs.webhooks.receivers
    if url is not None and url not in receivers:
        # Only configured receivers are sent to: a row queued for any other URL would wait forever.
        raise click.UsageError(f"--url {url!r} is not one of LIFELINE_EVENT_WEBHOOKS "
                               f"({', '.join(receivers)}): add it there first, or give one of those exactly")
    start, end = _when(since), _when(until) if until else None
    if end is not None and end <= start:
        raise click.UsageError(f"--until {until} is not after --since {since}: nothing lies between them")
    count = outputs.webhooks.redeliver(start, end, url)
    click.echo(f"{count} deliveries queued")


@click.command("dial")
@click.argument("to")
@click.option("--dtmf", default=None, help="Keys to send once answered, e.g. a bridge's PIN: 1234#")
@click.option("--summary-to", default=None, help="Email the summary here when the call ends.")
@with_appcontext
def dial(to: str, dtmf: str | None, summary_to: str | None) -> None:
    """Call TO (+E.164 or sip:…) and listen to the far end; the running app transcribes and summarises."""
    outputs = current_app.extensions["conversation"]
    try:
        ccid = outputs.dialout.place(to, dtmf, summary_to)
    except (DialError, ProviderError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"dialling {to}: call {ccid}")


def register(app: Flask) -> None:
    """Add `flask events` and `flask dial` to the app's commands."""
    app.cli.add_command(events)
    app.cli.add_command(dial)
