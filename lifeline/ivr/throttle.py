"""Throttling of token guessing: failed sign-ins and bearer tokens, counted per client address.

The console's sign-in form, the API's bearer header and /metrics each compare a presented token
with a configured one. Every wrong one is recorded in the store with the client's address; once
an address has LIFELINE_AUTH_FAILURES of them within LIFELINE_AUTH_WINDOW_S, a token it presents
is refused (429 with Retry-After) without being compared, the right one too, until the oldest
failure leaves the window. Requests that present no token (webhooks, a signed-in console's
cookie, /healthz) are neither counted nor refused.

The count lives in the store, not in the process, so every gunicorn worker and every instance
on the same database sees the same failures and a guesser gets the limit once, not once per
worker. IPv6 clients are counted per /64, the block one host is usually given. While the store is
down nothing is counted or refused (the token must still be right).

The check and the count are two steps, not one: wrong tokens already being compared when the
limit is reached still count and are answered 401, so a guesser sending in parallel gets the
limit plus about as many as the server handles at once (tens), per window. Closing that gap would
cost a write on every request that carries a token, the right ones included.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from dataclasses import dataclass

from flask import Request, Response

from .config import Settings
from .errors import StoreError, error_response
from .store import CallStore

log = logging.getLogger(__name__)


def client_key(address: str | None) -> str:
    """The key failures are counted under: the IPv4 address, or the IPv6 address's /64."""
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return "unknown"  # no address (a unix socket, a test client): counted together
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass(frozen=True)
class FailureThrottle:
    """Counts wrong tokens per client in the store and says when a client must wait."""

    store: CallStore
    limit: int  # failures in the window that close the door; 0 turns throttling off
    window_s: float

    def retry_after(self, client: str, now: float | None = None) -> int | None:
        """Seconds until `client` may present a token again, or None when it may now."""
        if not self.limit:
            return None
        now = time.time() if now is None else now
        try:
            failures = self.store.auth_failures(client, now - self.window_s)
        except StoreError as exc:
            # Open, not shut: the token still has to be right, and the clients that hold it (the live
            # feed, a scrape) keep the answers they get in an outage (the feed's retry hint, say).
            log.warning("wrong tokens from %s not counted while the store is down: %s", client, exc)
            return None
        if len(failures) < self.limit:
            return None
        # One more attempt is allowed once all but limit - 1 of the failures have left the window.
        frees_at = failures[len(failures) - self.limit] + self.window_s
        return max(1, math.ceil(frees_at - now))

    def failed(self, client: str, now: float | None = None) -> None:
        """Record a wrong token from `client` (and forget everyone's failures older than the window)."""
        if not self.limit:
            return
        now = time.time() if now is None else now
        try:
            self.store.note_auth_failure(client, now, now - self.window_s)
            count = len(self.store.auth_failures(client, now - self.window_s))
        except StoreError as exc:
            log.warning("a wrong token from %s not counted while the store is down: %s", client, exc)
            return
        if count == self.limit:
            log.warning("%s sent %d wrong tokens within %.0f s: its tokens are refused (429) until "
                        "the oldest of them is that old", client, self.limit, self.window_s)


def throttle_of(settings: Settings, store: CallStore) -> FailureThrottle:
    """The throttle the settings describe (LIFELINE_AUTH_FAILURES, LIFELINE_AUTH_WINDOW_S)."""
    return FailureThrottle(store, settings.auth_failures, settings.auth_window_s)


def client_of(request: Request) -> str:
    """The requesting client's key (its address as LIFELINE_TRUSTED_PROXIES lets the app see it)."""
    return client_key(request.remote_addr)


def too_many_failures(retry_after: int) -> tuple[Response, int]:
    """429 in the JSON error shape, with Retry-After."""
    response, status = error_response(
        429, f"too many wrong tokens from this address: try again in {retry_after} s with the right "
             "one (LIFELINE_AUTH_FAILURES wrong tokens within LIFELINE_AUTH_WINDOW_S close the door; "
             "behind a proxy, set LIFELINE_TRUSTED_PROXIES so each client is counted apart)",
        "too_many_failures")
    response.headers["Retry-After"] = str(retry_after)
    return response, status
