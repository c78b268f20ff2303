"""GET /api/openapi.json: the hand-written description of the HTTP API (ivr/openapi.yaml)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

DOCUMENT = Path(__file__).with_name("openapi.yaml")
bp = Blueprint("openapi", __name__)


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document, parsed once per process."""
    loaded: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    return loaded


@bp.get("/api/openapi.json")
def openapi() -> ResponseReturnValue:
    """The API description; public, since it holds no call data."""
    return jsonify(document())
