"""Emailing a summary: HTML and plain text over SMTP, with TLS (STARTTLS or smtps) unless told otherwise."""

from __future__ import annotations

import hashlib
import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

from .settings import SmtpTarget
from .summary import as_text


def render(summary: dict[str, Any], sender: str, to: list[str]) -> EmailMessage:
    """The summary email: a plain-text part and an HTML part with the same facts."""
    message = EmailMessage()
    outcome = summary["outcome"]
    caller = _one_line(str(summary["from"] or "unknown caller"))
    message["Subject"] = f"Call summary: {caller}, {outcome}"
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(usegmt=True)
    # The same for every send of one call's summary: should it go twice (a lease expiring after a
    # send whose outcome could not be stored), mail systems and clients drop the copy.
    message["Message-ID"] = message_id(str(summary["call_control_id"]), sender)
    message.set_content(as_text(summary))
    message.add_alternative(_html(summary), subtype="html")
    return message


def message_id(call_control_id: str, sender: str) -> str:
    """The summary email's Message-ID: made from the call, in the sender's domain."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "lifeline.invalid"
    return f"<summary.{hashlib.sha256(call_control_id.encode()).hexdigest()[:32]}@{domain}>"


def _one_line(value: str) -> str:
    """A header value from the caller's side (a SIP From can hold anything): control and line-break
    characters become spaces, as the email module refuses a header with a line break in it."""
    return " ".join("".join(" " if not c.isprintable() else c for c in value).split())


def _html(summary: dict[str, Any]) -> str:
    e = html.escape

    def items(values: list[str]) -> str:
        return "".join(f"<li>{e(v)}</li>" for v in values) or "<li>none</li>"

    transfer = summary["transfer"]
    rows = [("Caller", summary["from"] or "unknown"), ("Started", summary["started_at"]),
            ("Duration", f"{summary['duration_s']} s"), ("Outcome", summary["outcome"])]
    if transfer:
        rows.append(("Transfer", f"{transfer['rule']}: {transfer['reason']}"))
    for party, s in summary["sentiment"].items():
        rows.append((f"Sentiment ({party})",
                     f"first {s['first']:+.2f}, last {s['last']:+.2f}, mean {s['mean']:+.2f}"))
    table = "".join(f"<tr><th align='left'>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows)
    actions = [f"({a['party']}) {a['text']}" for a in summary["action_items"]]
    return (f"<html><body><h2>Call summary</h2><table>{table}</table>"
            f"<h3>Topics</h3><ul>{items(summary['topics'])}</ul>"
            f"<h3>Questions the caller asked</h3><ul>{items(summary['questions'])}</ul>"
            f"<h3>Action items</h3><ul>{items(actions)}</ul></body></html>")


def send(target: SmtpTarget, message: EmailMessage, timeout_s: float = 10.0) -> None:
    """Send one message; raises smtplib.SMTPException or OSError on failure."""
    context = ssl.create_default_context()
    if target.plain_ok:
        # A relay this side of any network (or one named smtp+insecure://): its certificate, often
        # the distribution's self-signed one, is not what protects the mail, so it is not checked.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if target.ssl:
        client: smtplib.SMTP = smtplib.SMTP_SSL(target.host, target.port, timeout=timeout_s, context=context)
    else:
        client = smtplib.SMTP(target.host, target.port, timeout=timeout_s)
    with client:
        client.ehlo()
        if not target.ssl and client.has_extn("starttls"):
            client.starttls(context=context)
            client.ehlo()
        elif not target.ssl and not target.plain_ok:
            # Anyone on the path can strip STARTTLS from the server's answer: without it, the login
            # and the summary would cross the network in the clear.
            raise smtplib.SMTPNotSupportedError(
                f"{target.host}:{target.port} does not offer STARTTLS, so nothing was sent: use smtps://, "
                "a server that offers STARTTLS, or smtp+insecure:// in LIFELINE_SMTP_URL to send unencrypted "
                "on purpose")
        if target.user:
            client.login(target.user, target.password or "")
        client.send_message(message)
