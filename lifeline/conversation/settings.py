"""Settings of the conversation's outputs (webhooks out, email, the feed's poll)."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from urllib.parse import unquote, urlsplit

import httpx

from lifeline.ivr.config import on_off, settings_source
from lifeline.ivr.errors import ConfigError, Problem

# An email address as a summary's recipient needs it: one @, a dot in the domain, no list separators.
EMAIL = re.compile(r"^[^@\s,<>]+@[^@\s,<>]+\.[^@\s,<>]+$")


# The schemes of LIFELINE_SMTP_URL and their default ports.
SMTP_SCHEMES = {"smtp": 587, "smtps": 465, "smtp+insecure": 25}


@dataclass(frozen=True)
class SmtpTarget:
    """Where summaries are emailed from: host, port and optional credentials."""

    host: str
    port: int
    user: str | None
    password: str | None
    ssl: bool
    # Sending without TLS is allowed only to a relay on this machine or when the URL says so
    # (smtp+insecure://): otherwise a server that does not offer STARTTLS gets nothing.
    plain_ok: bool = False


@dataclass(frozen=True)
class OutputSettings:
    """Validated settings of the outputs."""

    event_webhooks: tuple[str, ...] = ()
    event_secret: str | None = None
    retry_base_s: float = 1.0
    retry_for_s: float = 24 * 3600.0
    webhook_timeout_s: float = 5.0
    smtp: SmtpTarget | None = None
    summary_to: tuple[str, ...] = ()
    summary_from: str = "lifeline@localhost"
    summary_transferred_only: bool = False
    feed_poll_s: float = 1.0
    transcript_settle_s: float = 60.0
    dial_from: str | None = None
    # Where dial-out may call: E.164 prefixes (+44, +1800) and sip:<domain> entries; empty: anywhere.
    dial_allow: tuple[str, ...] = ()


def load_output_settings(overrides: Mapping[str, object] | None) -> OutputSettings:
    """Read LIFELINE_EVENT_*, _SMTP_URL, _SUMMARY_*, _DIAL_FROM, _DIAL_ALLOW (overrides win), or raise
    ConfigError."""
    source = settings_source(overrides)

    def get(name: str) -> str:
        return source.get(name, "").strip()

    problems: list[Problem] = []
    hooks = tuple(u.strip() for u in get("LIFELINE_EVENT_WEBHOOKS").split(",") if u.strip())
    for url in hooks:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            problems.append(Problem(
                f"LIFELINE_EVENT_WEBHOOKS has {url!r}, not an http(s) URL: give full URLs "
                "separated by commas",
                "LIFELINE_EVENT_WEBHOOKS"))
        elif (unusable := _unsendable(url)) is not None:
            problems.append(Problem(
                f"LIFELINE_EVENT_WEBHOOKS has {url!r}, which cannot be sent to ({unusable}): "
                "check the host name for typos such as two dots in a row",
                "LIFELINE_EVENT_WEBHOOKS"))
    secret = get("LIFELINE_EVENT_SECRET") or None
    if hooks and not secret:
        problems.append(Problem(
            "LIFELINE_EVENT_WEBHOOKS is set but LIFELINE_EVENT_SECRET is not: set a long "
            "random secret; receivers check the Lifeline-Signature header with it",
            "LIFELINE_EVENT_SECRET"))
    smtp = _smtp(get("LIFELINE_SMTP_URL"), problems)
    summary_to = tuple(a.strip() for a in get("LIFELINE_SUMMARY_TO").split(",") if a.strip())
    if summary_to and smtp is None:
        problems.append(Problem(
            "LIFELINE_SUMMARY_TO is set but LIFELINE_SMTP_URL is not: set "
            "smtp://user:pass@host:port",
            "LIFELINE_SMTP_URL"))
    # "Ops <ops@example.com>" is an address too: the part in brackets is what must look like one.
    wrong = [a for a in summary_to if not EMAIL.match(parseaddr(a)[1])]
    if wrong:
        problems.append(Problem(
            f"LIFELINE_SUMMARY_TO has {wrong[0]!r}, not an email address: give addresses "
            "like ops@example.com, separated by commas",
            "LIFELINE_SUMMARY_TO"))
    only = on_off(get("LIFELINE_SUMMARY_TRANSFERRED_ONLY"), "LIFELINE_SUMMARY_TRANSFERRED_ONLY", False,
                  "on: summaries of transferred calls only", problems)
    numbers = {name: _number(get(name), default, problems, name)
               for name, default in (("LIFELINE_EVENT_RETRY_BASE_S", 1.0),
                                     ("LIFELINE_EVENT_RETRY_FOR_S", 24 * 3600.0),
                                     ("LIFELINE_FEED_POLL_S", 1.0))}
    # 0 is allowed: hand a call over as soon as it ends (late words are then not waited for).
    settle_s = _number(get("LIFELINE_TRANSCRIPT_SETTLE_S"), 60.0, problems, "LIFELINE_TRANSCRIPT_SETTLE_S",
                       allow_zero=True)
    dial_from = get("LIFELINE_DIAL_FROM")
    if dial_from and not re.match(r"^\+[1-9]\d{6,14}$", dial_from):
        problems.append(Problem(
            "LIFELINE_DIAL_FROM must be one of your Telnyx numbers in E.164 form, "
            "e.g. +15551230000",
            "LIFELINE_DIAL_FROM"))
    elif dial_from and get("TELNYX_API_KEY") and not get("TELNYX_CONNECTION_ID"):
        # Said now, not at the first dial-out (a Twilio-only deployment's dial-out answers 409 then).
        problems.append(Problem(
            "LIFELINE_DIAL_FROM is set but TELNYX_CONNECTION_ID is not: dialling out goes "
            "through your Call Control Application; copy its id from the Telnyx portal",
            "TELNYX_CONNECTION_ID"))
    dial_allow = _dial_allow(get("LIFELINE_DIAL_ALLOW"), problems)
    if problems:
        raise ConfigError(problems)
    return OutputSettings(
        event_webhooks=hooks, event_secret=secret,
        retry_base_s=numbers["LIFELINE_EVENT_RETRY_BASE_S"],
        retry_for_s=numbers["LIFELINE_EVENT_RETRY_FOR_S"],
        smtp=smtp, summary_to=summary_to,
        summary_from=get("LIFELINE_SUMMARY_FROM") or "lifeline@localhost",
        summary_transferred_only=only,
        feed_poll_s=numbers["LIFELINE_FEED_POLL_S"], transcript_settle_s=settle_s,
        dial_from=get("LIFELINE_DIAL_FROM") or None, dial_allow=dial_allow)


_DIAL_PREFIX = re.compile(r"^\+\d{1,15}$")
_SIP_DOMAIN = re.compile(r"^sips?:[A-Za-z0-9.-]+$")


def _dial_allow(value: str, problems: list[Problem]) -> tuple[str, ...]:
    """LIFELINE_DIAL_ALLOW: E.164 prefixes and sip:<domain> entries, comma-separated."""
    entries = tuple(e.strip() for e in value.split(",") if e.strip())
    wrong = [e for e in entries if not (_DIAL_PREFIX.match(e) or _SIP_DOMAIN.match(e))]
    if wrong:
        problems.append(Problem(
            f"LIFELINE_DIAL_ALLOW has {wrong[0][:40]!r}: give E.164 prefixes (+ and 1-15 digits: "
            "+44, +1800555) or SIP domains (sip:conf.example.com), separated by commas",
            "LIFELINE_DIAL_ALLOW"))
    return tuple(e.lower() for e in entries)


def _unsendable(url: str) -> str | None:
    """Why httpx could not send to this URL (it finds out only when it tries), or None."""
    try:
        parsed = httpx.URL(url)
        parsed.host.encode("idna")  # what the connection does with the name: empty labels fail
    except (httpx.InvalidURL, UnicodeError) as exc:
        return str(exc) or exc.__class__.__name__
    if parsed.port is not None and not 0 < parsed.port < 65536:
        return f"port {parsed.port} is out of range"
    return None


def _smtp(url: str, problems: list[Problem]) -> SmtpTarget | None:
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in SMTP_SCHEMES or not parts.hostname:
        problems.append(Problem(
            "LIFELINE_SMTP_URL must look like smtp://user:pass@host:port (or smtps://, or "
            "smtp+insecure:// for a relay that offers no TLS)",
            "LIFELINE_SMTP_URL"))
        return None
    try:
        port = parts.port or SMTP_SCHEMES[parts.scheme]
    except ValueError:
        problems.append(Problem("LIFELINE_SMTP_URL has a port that is not a number", "LIFELINE_SMTP_URL"))
        return None
    return SmtpTarget(host=parts.hostname, port=port,
                      user=unquote(parts.username) if parts.username else None,
                      password=unquote(parts.password) if parts.password else None,
                      ssl=parts.scheme == "smtps",
                      plain_ok=parts.scheme == "smtp+insecure" or _loopback(parts.hostname))


def _loopback(host: str) -> bool:
    """Whether host names this machine (a local relay: nothing crosses a network)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _number(text: str, default: float, problems: list[Problem], name: str, allow_zero: bool = False) -> float:
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not ((value >= 0 if allow_zero else value > 0) and value < math.inf):
        problems.append(Problem(
            f"{name} must be a number of seconds (0 or more)" if allow_zero
            else f"{name} must be a positive number of seconds",
            name))
        return default
    return value
