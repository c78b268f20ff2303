"""Telnyx's answers to commands: the success body and the one error shape."""

from __future__ import annotations

from typing import Any

from .strict import error_body

Reply = tuple[int, dict[str, Any]]


def ok() -> Reply:
    """Telnyx's success body for call commands."""
    return 200, {"data": {"result": "ok"}}


def error(status: int, code: str, title: str, detail: str = "") -> Reply:
    """Telnyx's error body (codes with no reference are marked so in `meta`)."""
    return status, {"errors": [error_body(code, title, detail)]}


def unauthorized() -> Reply:
    """A request without our API key."""
    return error(401, "10009", "Authentication failed", "check the API key")


def not_answered() -> Reply:
    """A media or recording command on a leg that is not answered yet."""
    return error(422, "90034", "Call not answered yet")


def missing(what: str) -> Reply:
    """A required parameter is absent or empty."""
    return error(422, "10004", "Missing required parameter", f"{what} required")
