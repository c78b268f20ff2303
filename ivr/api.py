"""Read-only JSON API: health and the record of each call."""

from __future__ import annotations

import hmac
from dataclasses import asdict

from flask import Blueprint, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from .errors import error_response
from .timefmt import iso_times

bp = Blueprint("api", __name__, template_folder="templates")


@bp.before_request
def require_token() -> ResponseReturnValue | None:
    """Call records hold callers' numbers and words: only holders of LIFELINE_API_TOKEN see them."""
    if request.endpoint == "api.health":
        return None
    expected = current_app.extensions["lifeline"].settings.api_token
    if not expected:
        return error_response(403, "the calls API is off: set LIFELINE_API_TOKEN and send it as "
                                   "'Authorization: Bearer <token>' (or ?token= for the dashboard)")
    header = request.headers.get("Authorization", "")
    given = header[7:] if header.startswith("Bearer ") else request.args.get("token", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return error_response(403, "wrong or missing API token")
    return None


@bp.get("/healthz")
def health() -> ResponseReturnValue:
    """200 when the store answers, 503 otherwise."""
    store = current_app.extensions["lifeline"].store
    try:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any database failure means "not ready"
        return error_response(503, f"database unavailable: {exc.__class__.__name__}")
    return jsonify(status="ok", engine=current_app.extensions["lifeline"].settings.engine)


@bp.get("/api/calls")
def list_calls() -> ResponseReturnValue:
    """Recent calls, newest first; `?active=1` for calls still up."""
    store = current_app.extensions["lifeline"].store
    try:
        limit = min(max(int(request.args.get("limit", 50)), 1), 500)
    except ValueError:
        return error_response(400, "limit must be a whole number from 1 to 500")
    calls = store.list_calls(limit=limit, active_only=request.args.get("active") in ("1", "true"))
    return jsonify(calls=iso_times([asdict(c) for c in calls]))


@bp.get("/dashboard")
def dashboard() -> ResponseReturnValue:
    """A page that watches live calls (it reads the API with the same token)."""
    return render_template("dashboard.html")


@bp.get("/api/calls/<path:call_control_id>")
def call_detail(call_control_id: str) -> ResponseReturnValue:
    """One call: its record, decisions, transfers, messages, events and commands."""
    store = current_app.extensions["lifeline"].store
    call = store.get_call(call_control_id)
    if call is None:
        return error_response(404, f"no call {call_control_id!r}")
    return jsonify(**iso_times(dict(
        call=asdict(call),
        decisions=store.decisions(call_control_id),
        transfers=[asdict(t) for t in store.transfers(call_control_id)],
        messages=store.messages(call_control_id),
        events=[{k: e[k] for k in ("id", "event_type", "occurred_at", "received_at", "attempt")}
                for e in store.events(call_control_id)],
        commands=[{"name": o.command.name, "command_id": o.command.command_id, "status": o.status,
                   "attempts": o.attempts, "last_error": o.last_error}
                  for o in store.outbox(call_control_id)],
    )))
