"""Who may read call records: a bearer token (API clients) or a signed session (the console).

The token never travels in a URL, where it would land in access logs, proxies and browser
history. A person signs in once with a form that POSTs the token; Flask's signed session cookie
(HttpOnly, SameSite=Strict) then carries a digest of it, the time it was opened and a random
session id, so a session ends 8 hours after sign-in however busy, and changing
LIFELINE_API_TOKEN signs everyone out. Signing out clears this browser's cookie and records the
session id in the store until its 8 hours would have ended, so a copy of the cookie taken before
opens nothing either. The session also holds a random CSRF token: every request that changes
state on the strength of the cookie must present it (a form field or the X-CSRF-Token header).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from datetime import timedelta

from flask import Flask, current_app, session

from .config import Settings

SESSION_HOURS = 8
CSRF_HEADER = "X-CSRF-Token"
_SESSION_KEY = "api"
_CSRF_KEY = "csrf"
_OPENED_KEY = "opened"
_ID_KEY = "sid"


def configure_sessions(app: Flask, settings: Settings) -> None:
    """Sign session cookies with LIFELINE_SECRET_KEY (or a key derived from the provider's credential)."""
    app.secret_key = settings.secret_key or hmac.new(
        settings.provider_secret.encode(), b"lifeline-console-session", hashlib.sha256).hexdigest()
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_SECURE=bool(settings.public_url
                                                 and settings.public_url.startswith("https://")),
                      PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
                      # The cookie's expiry stays where sign-in set it: 8 hours from then, however
                      # busy the session (refreshing it on every request would never end one in use).
                      SESSION_REFRESH_EACH_REQUEST=False)


def bearer(header: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; the scheme in any case (RFC 7235)."""
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of a presented token with the configured one."""
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, so a 500).
    return hmac.compare_digest(given.encode(), expected.encode())


def signed_in(expected: str, revoked: Callable[[str], bool], now: float | None = None) -> bool:
    """True when this request's session was opened with the current API token under 8 hours ago,
    and has not been signed out (`revoked` asks the store)."""
    mark, opened, sid = session.get(_SESSION_KEY), session.get(_OPENED_KEY), session.get(_ID_KEY)
    now = time.time() if now is None else now
    # The age is checked here too, not only by the cookie's expiry: a copied cookie carries no
    # expiry of its own, and the signed time cannot be changed.
    fresh = isinstance(opened, int | float) and 0 <= now - opened < SESSION_HOURS * 3600
    if not (isinstance(mark, str) and hmac.compare_digest(mark, _digest(expected)) and fresh
            and isinstance(sid, str)):
        return False
    # Asked last, so a stale or foreign cookie never costs a query.
    return not revoked(sid)


def open_session(expected: str, revoke: Callable[[str, float], None]) -> None:
    """Start a fresh session (a new id and CSRF token too) for a person who gave the right token;
    the browser's earlier session, if any, is closed as a sign-out would (copies of it included)."""
    close_session(revoke)
    session.permanent = True
    session[_SESSION_KEY] = _digest(expected)
    session[_OPENED_KEY] = time.time()
    session[_ID_KEY] = secrets.token_urlsafe(24)
    session[_CSRF_KEY] = secrets.token_urlsafe(32)


def close_session(revoke: Callable[[str, float], None]) -> None:
    """Sign this session out everywhere: `revoke` records its id until it would have ended."""
    sid, opened = session.get(_ID_KEY), session.get(_OPENED_KEY)
    if isinstance(sid, str) and isinstance(opened, int | float):
        revoke(sid, opened + SESSION_HOURS * 3600)
    session.clear()


def csrf_token() -> str:
    """This session's CSRF token, for forms and the X-CSRF-Token header."""
    token = session.get(_CSRF_KEY)
    if not isinstance(token, str):
        token = session[_CSRF_KEY] = secrets.token_urlsafe(32)
    return token


def csrf_ok(given: str | None) -> bool:
    """True when `given` is this session's CSRF token."""
    token = session.get(_CSRF_KEY)
    return isinstance(token, str) and isinstance(given, str) and token_matches(given, token)


def _digest(token: str) -> str:
    # The cookie is signed but readable: it holds a digest, never the token itself.
    return hmac.new(current_app.secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()  # type: ignore[union-attr]
