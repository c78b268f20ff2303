"""Read-only JSON API: health and the record of each call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from .cursors import CursorError, decode_cursor, encode_cursor
from .errors import StoreError, error_response, unauthorized
from .sanitize import clean_text, whole_number
from .sessions import CSRF_HEADER, bearer, csrf_ok, signed_in, token_matches
from .store import OUTCOMES, CallQuery
from .throttle import client_of, throttle_of, too_many_failures
from .timefmt import iso_times, parse_time

bp = Blueprint("api", __name__)


@bp.after_request
def private_headers(response: Response) -> Response:
    """Call records are callers' numbers and words: never cached on the way, never sniffed as
    something else by a browser (a transcript's text as HTML)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.before_request
def require_token() -> ResponseReturnValue | None:
    """Call records hold callers' numbers and words: only holders of LIFELINE_API_TOKEN see them."""
    if request.endpoint == "api.health":
        return None
    if "token" in request.args:
        # A token in a URL is written to access logs, proxies and browser history.
        return error_response(400, "the API token is not accepted in the URL: send it as "
                                   "'Authorization: Bearer <token>', or sign in at /dashboard")
    expected = current_app.extensions["lifeline"].settings.api_token
    if not expected:
        return error_response(403, "the calls API is off: set LIFELINE_API_TOKEN and send it as "
                                   "'Authorization: Bearer <token>'")
    header = request.headers.get("Authorization", "")
    given = bearer(header)
    lifeline = current_app.extensions["lifeline"]
    throttle = throttle_of(lifeline.settings, lifeline.store)
    if given is not None:
        # Asked before the token is compared: a guesser past the limit learns nothing, even when right.
        wait = throttle.retry_after(client_of(request))
        if wait is not None:
            return too_many_failures(wait)
        if token_matches(given, expected):
            return None
        throttle.failed(client_of(request))
    if not header and signed_in(expected, current_app.extensions["lifeline"].store.session_revoked):
        if request.method in ("GET", "HEAD") or csrf_ok(request.headers.get(CSRF_HEADER)):
            g.lifeline_by_session = True
            return None
        # The cookie goes with any request the browser makes; only our own pages know this token.
        return error_response(403, f"a signed-in session must send its CSRF token in {CSRF_HEADER} "
                                   "to change anything")
    if given is None and header:
        return unauthorized("the Authorization header is not 'Bearer <token>': send the API token "
                            "that way", token_given=False)
    if given is None:
        return unauthorized("the API token is missing: send it as 'Authorization: Bearer <token>', "
                            "or sign in at /dashboard", token_given=False)
    return unauthorized("wrong API token: send the value of LIFELINE_API_TOKEN as "
                        "'Authorization: Bearer <token>'", token_given=True)


def session_check() -> Callable[[], bool] | None:
    """For a long response to a signed-in browser: a check that its session is still open (not
    signed out, not past its 8 hours); None when the request came with the bearer token."""
    if not g.get("lifeline_by_session"):
        return None
    expected = current_app.extensions["lifeline"].settings.api_token
    revoked = current_app.extensions["lifeline"].store.session_revoked
    return lambda: signed_in(expected, revoked)


@bp.get("/healthz")
def health() -> ResponseReturnValue:
    """200 when the store answers, 503 otherwise."""
    try:
        current_app.extensions["lifeline"].store.ping()
    except StoreError as exc:
        return error_response(503, str(exc))
    return jsonify(status="ok", engine=current_app.extensions["lifeline"].settings.engine)


SEARCH_TEXT_MAX = 200
LIMIT_MAX = 500
CALLS_CURSOR = "calls"  # tells this listing's cursors from the transcript batches' (oldest first)
OFFSET_MAX = 2**31 - 1  # past any history (one past 2**63 overflowed the drivers' integers: a 500)


@bp.get("/api/calls")
def list_calls() -> ResponseReturnValue:
    """Calls newest first: `?active=1` for calls still up, or a search (outcome, rule, since, until, q)."""
    store = current_app.extensions["lifeline"].store
    args = request.args
    limit, offset = whole_number(args.get("limit", "50")), whole_number(args.get("offset", "0"))
    if limit is None or offset is None or not (1 <= limit <= LIMIT_MAX and 0 <= offset <= OFFSET_MAX):
        return error_response(400, f"limit must be a whole number from 1 to {LIMIT_MAX} and offset "
                                   f"one from 0 to {OFFSET_MAX}")
    active = args.get("active", "")
    if active not in ("", "0", "false", "1", "true"):
        return error_response(400, "active is 1 (or true) for the calls still up, 0 (or false, or "
                                   "left out) for the history")
    if active in ("1", "true"):
        if args.get("cursor") or offset:
            return error_response(400, "active=1 lists the calls still up in one page of up to limit "
                                       f"({LIMIT_MAX} at most): it takes no cursor or offset")
        calls = store.list_calls(limit=limit + 1, active_only=True)
        # `more` says the page was cut at `limit`: more calls are up than it shows.
        return jsonify(calls=iso_times([asdict(c) for c in calls[:limit]]), more=len(calls) > limit,
                       limit=limit)
    before = None
    if args.get("cursor"):
        try:
            before = decode_cursor(args["cursor"], kind=CALLS_CURSOR)
        except CursorError:
            return error_response(400, "cursor must be the next_cursor of an earlier page, as it was given")
        if offset:
            return error_response(400, "send cursor or offset, not both: the cursor already says where "
                                       "the next page starts")
    try:
        since, until = (parse_time(args[k]) if args.get(k) else None for k in ("since", "until"))
    except ValueError:
        return error_response(400, "since and until are ISO-8601 times (2026-11-30T06:00:00Z) "
                                   "or unix seconds")
    outcome = args.get("outcome") or None
    if outcome is not None and outcome not in OUTCOMES:
        return error_response(400, f"outcome {outcome[:40]!r} is unknown: one of {', '.join(OUTCOMES)}")
    text = clean_text(args.get("q", "")).strip()
    if len(text) > SEARCH_TEXT_MAX:
        return error_response(400, f"q is at most {SEARCH_TEXT_MAX} characters")
    page = store.search_calls(CallQuery(
        outcome=outcome, rule=args.get("rule") or None, since=since, until=until,
        text=text or None, offset=offset, limit=limit, before=before))
    calls = [asdict(c) | {"rule": page.rules.get(c.call_control_id)} for c in page.calls]
    last = page.calls[-1] if page.calls and page.more else None
    next_cursor = encode_cursor(last.created_at, last.call_control_id, kind=CALLS_CURSOR) if last else None
    return jsonify(calls=iso_times(calls), total=page.total, offset=offset, limit=limit,
                   next_cursor=next_cursor)


def _methods_elsewhere(path: str) -> list[str]:
    """The methods another route serves at this path (the call detail's path converter hides them)."""
    adapter = current_app.url_map.bind("lifeline.local")
    found = []
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        try:
            endpoint, _ = adapter.match(path, method=method)
        except HTTPException:
            continue
        if endpoint != "api.call_detail":
            found.append(method)
    return found


@bp.get("/api/calls/<path:call_control_id>")
def call_detail(call_control_id: str) -> ResponseReturnValue:
    """One call: its record, decisions, transfers, messages, events and commands."""
    store = current_app.extensions["lifeline"].store
    call = store.get_call(call_control_id)
    if call is None:
        others = _methods_elsewhere(request.path)
        if others:
            # The path is a call's action (…/listening), asked for with GET: not a call id. The
            # app's HTTP error handler words it and sets Allow, as for any other 405.
            raise MethodNotAllowed(valid_methods=others)
        return error_response(404, f"no call {call_control_id[:100]!r}")
    decisions = store.decisions(call_control_id)
    return jsonify(**iso_times(dict(
        # `rule` as in the list: the first decision's (the one that put the caller through).
        call=asdict(call) | {"rule": decisions[0]["rule"] if decisions else None},
        decisions=decisions,
        transfers=[asdict(t) for t in store.transfers(call_control_id)],
        messages=store.messages(call_control_id),
        events=[{k: e[k] for k in ("id", "event_type", "occurred_at", "received_at", "attempt")}
                for e in store.events(call_control_id)],
        commands=[{"name": o.command.name, "command_id": o.command.command_id, "status": o.status,
                   "attempts": o.attempts, "last_error": o.last_error}
                  for o in store.outbox(call_control_id)],
    )))
