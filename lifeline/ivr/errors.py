"""Lifeline's exception tree and its one JSON error shape.

LifelineError
├── ConfigError        a setting is missing or malformed; start-up stops
├── WebhookError       a request we refuse (carries its HTTP status)
│   ├── SignatureError     403: unsigned, forged, tampered or stale
│   ├── MalformedEvent     400: not an event of the provider's webhook
│   └── NotConfigured      404: the webhook of a provider this deployment does not use
├── ProviderError      the telephony provider (Telnyx, Twilio) refused or failed a command
├── RequestError       an API request that cannot be carried out (carries its HTTP status and code)
│   ├── DialError          lifeline/conversation/dialout.py: a dial-out that cannot be placed
│   └── PauseError         lifeline/conversation/pause.py: a pause or resume that cannot apply
├── RecordingError     a recording could not be fetched, kept or read back
│   ├── RecordingFetchError    lifeline/ivr/recordings.py: the download or its keeping failed
│   └── SinkError              lifeline/ivr/recording_sinks.py: the folder or bucket refused
├── StoreError         the database is down or busy (a retry can succeed); bugs are not StoreErrors
├── CursorError        lifeline/ivr/cursors.py: a paging cursor this server did not hand out (400)
├── CorpusError        lifeline/insight/corpus.py: a labelled file `flask evaluate` cannot use
├── MalformedFrame     lifeline/insight/frames.py: a media frame that is not the provider's JSON (skipped)
├── StreamRefused      lifeline/insight/media.py: a media socket that must not open
└── InvalidTransition  lifeline/calls/machine.py: a move the transitions table does not allow (a bug)

CursorError, CorpusError, MalformedFrame and InvalidTransition also derive from the built-in
class their callers once caught (ValueError, RuntimeError), so code that catches those still does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Response, jsonify


class LifelineError(Exception):
    """Base of every error Lifeline raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One reason start-up stops, with where it lies: the setting, and for a file its key path or
    the parser's line and column, so the entry points can print file:line without reading the words."""

    message: str  # what is wrong and the fix; a file's problem is printed after its file:line
    setting: str | None = None  # the setting to change (for a file's problem, the one naming the file)
    path: Path | None = None  # the file the problem is in
    keys: tuple[str | int, ...] = ()  # mapping keys and list indexes down to the node at fault
    line: int | None = None  # 1-based; given when the parser knows it (else found from keys)
    column: int | None = None

    @property
    def label(self) -> str:
        """How the problem's text names its file: `SETTING=path: `, or nothing for a setting's."""
        if self.path is None:
            return ""
        return f"{self.setting}={self.path}: " if self.setting else f"{self.path}: "

    def __str__(self) -> str:
        return self.label + self.message


class ConfigError(LifelineError):
    """A setting is missing or malformed; the message names it and the fix.

    Built from Problems (its message then one line per problem), or from text, kept as its
    message and read as one problem a line with no location."""

    def __init__(self, problems: str | Iterable[Problem], warnings: tuple[str, ...] = ()) -> None:
        if isinstance(problems, str):
            message = problems
            self.problems = [Problem(line.strip()) for line in message.splitlines() if line.strip()]
        else:
            self.problems = list(problems)
            message = "\n".join(map(str, self.problems))
        super().__init__(message)
        self.warnings = warnings  # suspicious values found alongside, worth printing with the error


class WebhookError(LifelineError):
    """A webhook request we refuse."""

    status = 400
    code = "bad_request"


class SignatureError(WebhookError):
    """The request is not signed with the provider's configured key, or is stale."""

    status = 403
    code = "invalid_signature"


class MalformedEvent(WebhookError):
    """The body is not an event of the provider's webhook (Telnyx Call Control v2, Twilio's form)."""

    status = 400
    code = "malformed_event"


class NotConfigured(WebhookError):
    """A webhook of a provider this deployment is not configured for; the message names its settings."""

    status = 404
    code = "not_configured"


class ProviderError(LifelineError):
    """The telephony provider refused or failed a command; `retryable` when trying again may work,
    `outcome_unknown` when the request went out and no answer came (it may have been carried out)."""

    def __init__(self, message: str, *, status: int | None, code: str | None, retryable: bool,
                 outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retryable = retryable
        self.outcome_unknown = outcome_unknown


class RequestError(LifelineError):
    """An API request that cannot be carried out; `status` and `code` are what the answer carries
    (the app's error handler answers every one of them in the JSON error shape)."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _default_code(status)


class RecordingError(LifelineError):
    """A recording could not be fetched, kept or read back; the message says why."""


class StoreError(LifelineError):
    """The call store is unavailable for now (down, unreachable, locked, a deadlock victim)."""


def error_response(status: int, message: str, code: str | None = None) -> tuple[Response, int]:
    """Build Lifeline's single JSON error shape."""
    return jsonify(_error(status, message, code)), status


def unauthorized(message: str, *, token_given: bool) -> tuple[Response, int]:
    """401 with the Bearer challenge of RFC 6750: no credentials, or a token that is not the one."""
    response, status = error_response(401, message)
    # A client library reads the challenge to tell "send a token" from "this token is wrong".
    challenge = 'Bearer realm="lifeline"'
    response.headers["WWW-Authenticate"] = challenge + (', error="invalid_token"' if token_given else "")
    return response, status


def error_body(status: int, message: str, code: str | None = None) -> bytes:
    """The same JSON error shape as bytes, for answers given outside Flask (lifeline/server.py)."""
    return json.dumps(_error(status, message, code)).encode()


def _error(status: int, message: str, code: str | None) -> dict[str, Any]:
    return {"error": {"status": status, "code": code or _default_code(status), "message": message}}


def _default_code(status: int) -> str:
    return {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
            405: "method_not_allowed",
            408: "request_timeout", 409: "conflict", 413: "payload_too_large", 422: "unprocessable",
            426: "upgrade_required", 429: "too_many_requests", 500: "internal", 502: "bad_gateway",
            503: "unavailable"}.get(status, "error")
