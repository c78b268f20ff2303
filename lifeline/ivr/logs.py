"""Log lines: time, level, logger and call on every line; text or JSON; secrets and digits masked.

`configure` is called by the entry points (gunicorn, `flask` commands, `make dev`), never by
the app factory, so tests and embedding programs keep their own logging.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from . import scope

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s call=%(call_id)s %(message)s"
_MASK = "***"
# A standalone run of four or more digits (card numbers, PINs, phone numbers, codes read out);
# digits inside identifiers such as call ids are left alone so lines stay traceable.
_DIGITS = re.compile(r"(?<![\w.:/-])\+?\d(?:[\s-]?\d){3,}(?![\w])")
# A timestamp (2026-11-30T06:11:05, with a T or a space and a time) or a date given as a query
# value (since=2026-11-30) is read before the digit runs, so request lines and times stay readable.
# A bare date is masked (it may be a date of birth a caller said), and so is anything that runs on
# past the timestamp's shape (0800-12-1234567).
_DATE = r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
_TIME = r"[T ]\d\d:\d\d(?::\d\d(?:[.,]\d{1,6})?)?(?:Z|[+-]\d\d:?\d\d)?"
_END = r"(?![\w:+-])(?!\.\d)"  # nothing of a longer number may follow (a full stop may)
# Numbers that name something of the system, never what a caller said: an HTTP status with the
# provider's error code after it (HTTP 422 90015), a process id (gunicorn's "Listening at: URL
# (pid)" too), a port (alone, or in a socket address as gunicorn writes it: ('127.0.0.1', 8000)),
# paging values, schema revisions ("at revision 0005, the code needs 0007"), a feed event's id
# (event_id=1234: the number an operator matches with Lifeline-Event-Id).
_SYSTEM = (r"\bHTTP \d{3}(?: \d{5})?\b|\bpid:? \d{1,7}\b|\bport:? \d{1,5}\b|(?<=[?&])(?:offset|limit)=\d+\b"
           r"|\bevent_id=\d{1,19}\b"
           r"|\('[\w.:-]{1,253}', \d{1,5}\)"
           r"|\bListening at: \S+ \(\d{1,7}\)|\b(?:revision|needs|ends at) \d{4}\b(?![\s-]?\d)")
_DATE_OR_DIGITS = re.compile(rf"(?P<date>\b{_DATE}{_TIME}{_END}|(?<==){_DATE}{_END}|{_SYSTEM})|"
                             + _DIGITS.pattern)
# A traceback's frame lines hold file names, line numbers and code, never what a caller said
# (the "|" prefix is an exception group's).
_FRAME = re.compile(r'^[\s|]*File "[^"\n]*", line \d+')
# Loggers whose messages carry no caller data, only numbers a developer needs (Alembic's revisions,
# lifeline/server.py's connection counts and limits).
UNMASKED_DIGITS = ("alembic", "lifeline.connections")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',]+")
_QUERY_SECRET = re.compile(r"(?i)\b((?:token|api_key|key|secret|password)=)[^\s&\"',]+")
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+(@)")
_TELNYX_KEY = re.compile(r"\bKEY[0-9A-Za-z_]{16,}\b")


def mask(text: str, secrets: Iterable[str] = (), digits: bool = True) -> str:
    """Text safe to log: known secrets, tokens, URL passwords and (with `digits`) digit strings masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _MASK)
    text = _BEARER.sub(rf"\1{_MASK}", text)
    text = _QUERY_SECRET.sub(rf"\1{_MASK}", text)
    text = _URL_PASSWORD.sub(rf"\1{_MASK}\2", text)
    text = _TELNYX_KEY.sub(_MASK, text)
    return _DATE_OR_DIGITS.sub(_masked_digits, text) if digits else text


def mask_traceback(text: str, secrets: Iterable[str] = ()) -> str:
    """A traceback masked as `mask` does, but for its frame lines' line numbers."""
    return "\n".join(mask(line, secrets, digits=not _FRAME.match(line)) for line in text.split("\n"))


def _masked_digits(match: re.Match[str]) -> str:
    return match.group() if match.group("date") else re.sub(r"\d", "#", match.group())


class ContextFilter(logging.Filter):
    """Adds the call being handled and masks the message (and its traceback) before any handler."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if len(s) >= 6)

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keep the record; rewrite it in place."""
        record.call_id = getattr(record, "call_id", None) or scope.current_call() or "-"
        record.msg = mask(record.getMessage(), self.secrets,
                          digits=not record.name.startswith(UNMASKED_DIGITS))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_traceback(record.exc_text, self.secrets)
        return True


class UtcFormatter(logging.Formatter):
    """ISO-8601 UTC times with milliseconds."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The record's time as 2026-11-30T05:52:18.123Z."""
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class JsonFormatter(UtcFormatter):
    """One JSON object per line: time, level, logger, call_id, message (and exception)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        entry: dict[str, Any] = {"time": self.formatTime(record), "level": record.levelname,
                                 "logger": record.name, "call_id": getattr(record, "call_id", "-"),
                                 "message": record.getMessage()}
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def make_handler(fmt: str = "text", secrets: Iterable[str] = (), stream: TextIO | None = None
                 ) -> logging.Handler:
    """A stream handler writing Lifeline's line format."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: choose one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter(secrets))
    handler.setFormatter(JsonFormatter() if fmt == "json" else UtcFormatter(TEXT_FORMAT))
    return handler


def configure(fmt: str = "text", level: int | str = logging.INFO, secrets: Iterable[str] = (),
              loggers: Iterable[str] = ("gunicorn.error", "werkzeug", "apscheduler")) -> logging.Handler:
    """Send every log line of this process through one Lifeline handler (replacing earlier ones)."""
    handler = make_handler(fmt, secrets)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_lifeline", False)]:
        root.removeHandler(old)
    handler._lifeline = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for name in loggers:
        # Servers and libraries that bring their own handlers write through ours instead.
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.migration").addFilter(_alembic_detail)  # added once: a list check
    return handler


def _alembic_detail(record: logging.LogRecord) -> bool:
    """Keep Alembic's "Running upgrade a -> b" (progress an operator wants), drop its notes on its
    own workings, which `flask db current` printed twice per run."""
    return not record.getMessage().startswith(("Context impl ", "Will assume "))
