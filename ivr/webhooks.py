"""The Telnyx webhook endpoint: verify, parse, record and dispatch, acknowledge."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from .events import parse_event

bp = Blueprint("webhooks", __name__)


@bp.post("/webhooks/telnyx")
def telnyx_webhook() -> ResponseReturnValue:
    """Receive one Call Control event; 403 unsigned/stale, 400 malformed, 200 otherwise."""
    lifeline = current_app.extensions["lifeline"]
    body = request.get_data(cache=False)
    lifeline.verifier.verify(request.headers, body)
    event = parse_event(body)
    result = lifeline.calls.handle(event)
    return jsonify(result=result, event_id=event.id), 200
