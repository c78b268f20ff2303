"""GET /api/openapi.json: the hand-written description of the HTTP API (lifeline/ivr/openapi.yaml).

Routes of a provider that is not configured are not served, so they are not described either:
their path items carry `x-lifeline-provider`, which the served document leaves out.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

DOCUMENT = Path(__file__).with_name("openapi.yaml")
PROVIDER_KEY = "x-lifeline-provider"
# The app extension each optional provider registers when it is configured.
_PROVIDER_EXTENSIONS = {"twilio": "lifeline_twilio"}
bp = Blueprint("openapi", __name__)


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document, parsed once per process."""
    loaded: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    return loaded


def served(configured: frozenset[str]) -> dict[str, Any]:
    """The document as this deployment serves it: the routes of the configured providers only."""
    whole = document()
    paths = {path: {k: v for k, v in item.items() if k != PROVIDER_KEY}
             for path, item in whole["paths"].items()
             if item.get(PROVIDER_KEY) is None or item[PROVIDER_KEY] in configured}
    return {**whole, "paths": paths}


@bp.get("/api/openapi.json")
def openapi() -> ResponseReturnValue:
    """The API description; public, since it holds no call data."""
    configured = frozenset(p for p, ext in _PROVIDER_EXTENSIONS.items() if ext in current_app.extensions)
    return jsonify(served(configured))
