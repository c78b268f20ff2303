"""Who may read call records: a bearer token (API clients) or a signed session (the dashboard).

The token never travels in a URL, where it would land in access logs, proxies and browser
history. A person signs in once with a form that POSTs the token; Flask's signed session cookie
(HttpOnly, SameSite=Strict) then carries a digest of it, so changing LIFELINE_API_TOKEN signs
everyone out.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from flask import Blueprint, Flask, current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from .config import Settings

bp = Blueprint("console", __name__)
SESSION_HOURS = 8
_SESSION_KEY = "api"


def configure_sessions(app: Flask, settings: Settings) -> None:
    """Sign session cookies with LIFELINE_SECRET_KEY (or a key derived from the Telnyx API key)."""
    app.secret_key = settings.secret_key or hmac.new(
        settings.telnyx_api_key.encode(), b"lifeline-console-session", hashlib.sha256).hexdigest()
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_SECURE=bool(settings.public_url
                                                 and settings.public_url.startswith("https://")),
                      PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS))


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of a presented token with the configured one."""
    return hmac.compare_digest(given.encode(), expected.encode())


def signed_in(expected: str) -> bool:
    """True when this request's session was opened with the current API token."""
    mark = session.get(_SESSION_KEY)
    return isinstance(mark, str) and hmac.compare_digest(mark, _digest(expected))


def _digest(token: str) -> str:
    # The cookie is signed but readable: it holds a digest, never the token itself.
    return hmac.new(current_app.secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()  # type: ignore[union-attr]


@bp.get("/dashboard")
def dashboard() -> ResponseReturnValue:
    """The live-calls page once signed in; the sign-in form otherwise."""
    expected = current_app.extensions["lifeline"].settings.api_token
    if not expected:
        return render_template("signin.html", error="The dashboard is off: set LIFELINE_API_TOKEN."), 403
    if not signed_in(expected):
        return render_template("signin.html", error=None)
    return render_template("dashboard.html")


@bp.post("/dashboard/signin")
def sign_in() -> ResponseReturnValue:
    """Check the token from the form and open a session; 403 and the form again if it is wrong."""
    expected = current_app.extensions["lifeline"].settings.api_token
    given = request.form.get("token", "")
    if not expected or not token_matches(given, expected):
        return render_template("signin.html", error="Wrong token."), 403
    session.clear()
    session.permanent = True
    session[_SESSION_KEY] = _digest(expected)
    return redirect(url_for("console.dashboard"), code=303)


@bp.post("/dashboard/signout")
def sign_out() -> ResponseReturnValue:
    """Close the session."""
    session.clear()
    return redirect(url_for("console.dashboard"), code=303)
