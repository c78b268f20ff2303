"""Whether Telnyx takes our commands: reported once when it stops, once when it comes back.

While Telnyx is unreachable (network, timeouts, 5xx) or refuses the API key (401/403), every
command fails the same way; one line with the fix says more than one line per command per sweep.
One command that used up its retries while others got through is a bad moment, not an outage: an
outage is declared when a second delivery in a row fails (a lasting one always gets there, since
the monitor resends what is kept). A refused key is declared at once: it never fixes itself.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)
OK, UNREACHABLE, REFUSING = "ok", "unreachable", "refusing"
FAILURES_FOR_AN_OUTAGE = 2


class TelnyxReachability:
    """Tracks the last known state of the command API and logs only its changes."""

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url
        self._state = OK
        self._failures_in_a_row = 0
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        """ok, unreachable or refusing."""
        return self._state

    def failed(self, error: str) -> None:
        """A command could not be delivered (after its retries) or was refused for our credentials."""
        kind = REFUSING if error.startswith(("HTTP 401", "HTTP 403")) else UNREACHABLE
        with self._lock:
            self._failures_in_a_row += 1
            if self._state == kind:
                return
            unconfirmed = kind == UNREACHABLE and self._failures_in_a_row < FAILURES_FOR_AN_OUTAGE
            if not unconfirmed:
                self._state = kind
        if unconfirmed:
            log.info("A command to Telnyx at %s failed all its tries (%s); it is kept and resent",
                     self._base_url, error)
            return
        if kind == REFUSING:
            log.error("Telnyx at %s refuses our API key (%s): check TELNYX_API_KEY (Keys & "
                      "Credentials in the portal); commands are kept and resent by the monitor",
                      self._base_url, error)
        else:
            log.error("Telnyx at %s is unreachable (%s): check the network and TELNYX_API_BASE_URL; "
                      "commands are kept and resent by the monitor until it answers",
                      self._base_url, error)

    def answered(self) -> None:
        """A command was accepted (or answered with a normal refusal): Telnyx is there."""
        with self._lock:
            self._failures_in_a_row = 0
            if self._state == OK:
                return
            self._state = OK
        log.warning("Telnyx at %s answers again; queued commands are being delivered", self._base_url)
