"""The app's answers to errors: one JSON shape for every one, a 5xx only for what a retry may fix."""

from __future__ import annotations

import logging
from urllib.parse import unquote_to_bytes

from flask import Flask, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing.exceptions import WebsocketMismatch

from lifeline.ivr.errors import ProviderError, RequestError, StoreError, WebhookError, error_response

log = logging.getLogger(__name__)


def register_errors(app: Flask) -> None:
    """Answer every error the app meets in the one JSON error shape (lifeline/ivr/errors.py)."""

    @app.errorhandler(WebhookError)
    def _refused(exc: WebhookError) -> ResponseReturnValue:
        log.warning("webhook refused (%d): %s", exc.status, exc)
        return error_response(exc.status, str(exc), exc.code)

    @app.before_request
    def _refuse_unstorable_query() -> ResponseReturnValue | None:
        # No store keeps a NUL in text (PostgreSQL refuses it outright), and a query that is not
        # UTF-8 fails wherever it is read: a 400 here, not a 500 there. (An id in the path with a
        # NUL is simply no call: the store answers 404 for it.)
        query = unquote_to_bytes(request.query_string.replace(b"+", b" "))
        try:
            query.decode()
        except UnicodeDecodeError:
            return error_response(400, "the query string is not UTF-8")
        if b"\x00" in query:
            return error_response(400, "a query parameter holds a NUL character")
        return None

    @app.errorhandler(RequestError)
    def _cannot(exc: RequestError) -> ResponseReturnValue:
        return error_response(exc.status, str(exc), exc.code)

    @app.errorhandler(ProviderError)
    def _provider_refused(exc: ProviderError) -> ResponseReturnValue:
        # Retrying may work (unreachable, a 5xx): the provider's gateway failed us. Otherwise the
        # provider refused what was asked, and asking again the same way will not help; or, on a
        # timeout, it may have done it: 504, and the message says how to find out.
        if exc.outcome_unknown:
            return error_response(504, str(exc), "provider_timeout")
        return error_response(502 if exc.retryable else 422, str(exc), "provider_error")

    @app.errorhandler(StoreError)
    def _store_down(exc: StoreError) -> ResponseReturnValue:
        # The store is down, unreachable or locked, for a read or a write: 503, so a webhook is
        # redelivered and a client tries again.
        log.error("store unavailable: %s", " ".join(str(exc).split())[:300])
        if request.path.startswith("/webhooks/"):
            # Nothing was acknowledged, so nothing is lost: the provider redelivers.
            return error_response(503, "call store unavailable; the event will be redelivered")
        return error_response(503, "the call store is unavailable; try again shortly")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> ResponseReturnValue:
        message, status = exc.description or exc.name, exc.code or 500
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            message = f"{request.path[:200]} takes {', '.join(exc.valid_methods)}, not {request.method}"
        elif isinstance(exc, WebsocketMismatch):
            if request.headers.get("Upgrade", "").lower() == "websocket":  # an upgrade to a plain route
                message = f"{request.path[:200]} is not a WebSocket: request it without Upgrade"
            else:  # a plain request to a media socket's path
                status = 426
                message = f"{request.path[:200]} is a media WebSocket: connect with Upgrade: websocket"
        response, status = error_response(status, message)
        if status == 426:
            response.headers["Upgrade"] = "websocket"
        # Werkzeug's own headers (a 405's Allow, a 416's Content-Range), in the one error shape's body.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response, status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        log.exception("unexpected error")
        return error_response(500, "internal error; see the server log")


