"""The conversation's HTTP face: the live feed (SSE), transcripts, pause/resume, summaries, dial-out."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context
from flask.typing import ResponseReturnValue

from lifeline.ivr.api import private_headers, require_token, session_check
from lifeline.ivr.cursors import CursorError, decode_cursor, encode_cursor
from lifeline.ivr.errors import StoreError, error_response
from lifeline.ivr.sanitize import whole_number
from lifeline.ivr.store import StoredEvent
from lifeline.ivr.timefmt import parse_time

from . import transcripts
from .summaries import no_summary_message

bp = Blueprint("conversation", __name__)
log = logging.getLogger(__name__)
# The same gate as the calls API (a bearer token, or the dashboard's session where there is one).
bp.before_request(require_token)
bp.after_request(private_headers)

KEEPALIVE_S = 15.0
BATCH_MAX = 100
FEED_ID_MAX = 2**63 - 1  # the largest id the feed's integer column holds; past it the driver overflows


def _outputs() -> Any:
    return current_app.extensions["conversation"]


def _needs_json(message: str) -> ResponseReturnValue:
    """400 for a body that is not the JSON asked for; it names the header when that was missing."""
    if not request.is_json:  # curl -d sends a form: the JSON in it is right, the header is not
        message += " with Content-Type: application/json"
    return error_response(400, message)


@bp.get("/api/events")
def events() -> ResponseReturnValue:
    """Server-Sent Events of every call (or `?call=<id>`); `Last-Event-ID` resumes after that id."""
    outputs = _outputs()
    call = request.args.get("call") or None
    given = request.headers.get("Last-Event-ID") or request.args.get("after")
    if given is not None:
        after = whole_number(given)
        if after is None or after > FEED_ID_MAX:
            return error_response(400, "Last-Event-ID (or ?after=) must be an event id, a whole number "
                                       f"from 0 to {FEED_ID_MAX}")
        cursor = after
    else:
        # A new client of one call gets that call from its start; of all calls, from now on.
        cursor = 0 if call else outputs.store.feed_last_id()
    if call is not None and outputs.store.get_call(call) is None:
        # A mistyped id would otherwise hold a stream open that never carries anything.
        return error_response(404, f"no call {call[:100]!r}")
    outputs.subscribed()
    hub, store, poll_s = outputs.hub, outputs.store, outputs.settings.feed_poll_s
    still_signed_in = session_check()

    def stream(cursor: int) -> Iterator[str]:
        with hub.streaming():
            yield from follow(cursor)

    def follow(cursor: int) -> Iterator[str]:
        yield "retry: 1000\n\n"
        quiet_since = checked_at = time.monotonic()
        while True:
            # A browser's session signed out elsewhere (or past its 8 hours) stops hearing the feed
            # here too, however busy the calls are; its reconnect is then refused.
            if still_signed_in is not None and time.monotonic() - checked_at > KEEPALIVE_S:
                checked_at = time.monotonic()
                if not _answers(still_signed_in):
                    return
            seen = hub.version
            try:
                batch = store.feed_after(cursor, call)
            except StoreError:
                # The store is unavailable: end the stream; the client reconnects with Last-Event-ID.
                log.warning("feed stream ended: the store is unavailable")
                return
            for event in batch:
                cursor = event.id
                yield sse(event)
            if batch:
                quiet_since = time.monotonic()
                continue
            hub.wait(seen, poll_s)
            # Whether or not other calls woke us: a one-call stream whose call is quiet must still
            # write now and then, so proxies keep it and a gone client is noticed.
            if time.monotonic() - quiet_since > KEEPALIVE_S:
                quiet_since = time.monotonic()
                yield ": keepalive\n\n"

    return Response(stream_with_context(stream(cursor)), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _answers(check: Callable[[], bool]) -> bool:
    """The session check's answer; True while the store cannot say (the feed itself notices that)."""
    try:
        return check()
    except StoreError:
        return True


def sse(event: StoredEvent) -> str:
    """One event in the SSE wire format."""
    return f"id: {event.id}\nevent: {event.kind}\ndata: {json.dumps(event.envelope())}\n\n"


@bp.get("/api/calls/<call_control_id>/transcript")
def transcript(call_control_id: str) -> ResponseReturnValue:
    """One call's transcript: JSON, or `?format=txt` / `?format=vtt`."""
    outputs = _outputs()
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "txt", "vtt"):
        return error_response(400, "format must be json, txt or vtt")
    call = outputs.store.get_call(call_control_id)
    if call is None:
        return error_response(404, f"no call {call_control_id[:100]!r}")
    doc = transcripts.transcript(call, outputs.store)
    if fmt == "txt":
        return Response(transcripts.as_text(doc), mimetype="text/plain")
    if fmt == "vtt":
        return Response(transcripts.as_vtt(doc), mimetype="text/vtt")
    return jsonify(doc)


@bp.get("/api/transcripts")
def transcript_batch() -> ResponseReturnValue:
    """Transcripts of calls started in [since, until) as NDJSON; the next page's cursor in a header."""
    outputs = _outputs()
    try:
        since, until = _time_arg("since"), _time_arg("until")
    except ValueError:
        return error_response(400, "since and until are ISO-8601 times (2026-11-30T06:00:00Z) "
                                   "or unix seconds")
    limit = whole_number(request.args.get("limit", "50"))
    if limit is None or not 1 <= limit <= BATCH_MAX:
        return error_response(400, f"limit is a whole number from 1 to {BATCH_MAX}")
    if "offset" in request.args:
        return error_response(400, "transcript batches page by cursor (Lifeline-Next-Cursor), not offset")
    given = request.args.get("cursor") or None
    try:
        after = decode_cursor(given) if given else None
    except CursorError as exc:
        return error_response(400, str(exc))
    settled_before = time.time() - outputs.settings.transcript_settle_s
    calls, waiting = transcripts.batch(outputs.store, since, until, after, limit, settled_before)
    body = "".join(json.dumps(transcripts.transcript(c, outputs.store)) + "\n" for c in calls)
    response = Response(body, mimetype="application/x-ndjson")
    # Our own encoding of where the page ended, never the text the client sent (a header must not
    # carry whatever a lenient base64 decoder skipped over).
    last = (calls[-1].created_at, calls[-1].call_control_id) if calls else after
    resume = encode_cursor(*last) if last else None
    if len(calls) == limit:
        response.headers["Lifeline-Next-Cursor"] = resume
    if resume:
        # Where a later run goes on from: after this page, or before a call still in progress.
        response.headers["Lifeline-Resume-Cursor"] = resume
    if waiting:
        response.headers["Lifeline-In-Progress"] = "1"
    return response


def _time_arg(name: str) -> float | None:
    value = request.args.get(name)
    if not value:
        return None
    return parse_time(value)  # raises ValueError, answered with a 400 by the caller


@bp.post("/api/calls/<call_control_id>/listening")
def listening(call_control_id: str) -> ResponseReturnValue:
    """`{"paused": true|false}`: stop or restart hearing the call."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("paused"), bool):
        return _needs_json('send a JSON body {"paused": true} or {"paused": false}')
    return jsonify(_outputs().control.set_paused(call_control_id, body["paused"], by="api"))


@bp.get("/api/calls/<call_control_id>/summary")
def summary(call_control_id: str) -> ResponseReturnValue:
    """The post-call summary and its email's delivery state (404 until the call has ended)."""
    outputs = _outputs()
    found = outputs.summaries.get(call_control_id)
    if found is None:
        call = outputs.store.get_call(call_control_id)
        if call is None:
            return error_response(404, f"no call {call_control_id[:100]!r}")
        return error_response(404, no_summary_message(call.ended_at, outputs.settings.transcript_settle_s,
                                                      time.time()))
    return jsonify(found)


@bp.post("/api/calls")
def dial() -> ResponseReturnValue:
    """`{"to", "dtmf"?, "summary_to"?}`: place a call and listen to the far end."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or set(body) - {"to", "dtmf", "summary_to"}:
        return _needs_json('send a JSON body {"to": "+1…" or "sip:…", "dtmf"?: "1234#", '
                           '"summary_to"?: "a@example.com"}')
    ccid = _outputs().dialout.place(body.get("to"), body.get("dtmf"), body.get("summary_to"),
                                    request.headers.get("Idempotency-Key"))
    return jsonify(call_control_id=ccid, status="dialing"), 201
