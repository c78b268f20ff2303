"""Placing a call to listen to the far end: `POST /api/calls` and `flask dial`."""

from __future__ import annotations

import json
import logging
import re
import uuid
from email.utils import parseaddr

from lifeline.calls import dialout
from lifeline.calls.unit import UnitOfWork, internal_event
from lifeline.insight.base import ListeningEngine
from lifeline.ivr.config import is_dialable
from lifeline.ivr.context import command_id_for
from lifeline.ivr.errors import RequestError
from lifeline.ivr.events import encode_client_state
from lifeline.ivr.store import Command
from lifeline.ivr.telnyx_api import TelnyxCommands

from .settings import EMAIL

log = logging.getLogger(__name__)

_DTMF = re.compile(r"^[0-9*#A-DwW]{1,64}$")
_KEY = re.compile(r"^[!-~]{1,200}$")
_DIAL_KEYS = uuid.UUID("5b0e2a51-3f5c-4c0e-9a57-6c1f1e7d2a10")  # the namespace of dial command ids


def allowed(to: str, allow: tuple[str, ...]) -> bool:
    """Whether LIFELINE_DIAL_ALLOW's entries let `to` be dialled: a number by its E.164 prefix, a
    SIP URI by its domain (exactly; sip: and sips: alike)."""
    if to.startswith("+"):
        return any(to.startswith(entry) for entry in allow if entry.startswith("+"))
    domain = sip_host(to)
    return domain is not None and any(entry.partition(":")[2] == domain for entry in allow
                                      if entry.startswith("sip"))


# RFC 3261's SIP URI: scheme, an optional user part ending at the first '@', the host (a name or
# a bracketed IPv6 address), an optional port, then parameters (';') and headers ('?').
_SIP_URI = re.compile(r"sips?:(?:[^@;?]+@)?(?P<host>\[[^\]]+\]|[^:;?@\[\]]+)(?::\d+)?"
                      r"(?P<params>;[^?]*)?(?:\?.*)?", re.IGNORECASE)


def sip_host(uri: str) -> str | None:
    """The host a SIP URI is sent to, in lower case; None when that is not plain from the URI."""
    found = _SIP_URI.fullmatch(uri)
    if found is None or "@" in uri[found.end("host"):]:
        return None  # an '@' past the host (in a parameter or header) would let the text mislead a reader
    if "maddr=" in (found.group("params") or "").lower():
        return None  # maddr sends the request to another address than the host
    return found.group("host").lower()


class DialError(RequestError):
    """A dial-out request that cannot be placed (carries its HTTP status)."""


# Only Telnyx can place a call: Lifeline has no Twilio dial-out (calls.create) yet.
NEEDS_TELNYX = ("dialling out needs Telnyx, which is not configured: set TELNYX_API_KEY, TELNYX_PUBLIC_KEY "
                "and TELNYX_CONNECTION_ID (a Twilio number cannot dial out yet)")


class DialOut:
    """Validates a dial-out request, dials through Telnyx and records the call."""

    def __init__(self, telnyx: TelnyxCommands | None, units: UnitOfWork, dial_from: str | None,
                 engine: ListeningEngine, allow: tuple[str, ...] = ()) -> None:
        self._telnyx = telnyx
        self._units = units
        self._from = dial_from
        self._engine = engine
        self._allow = allow

    def place(self, to: object, dtmf: object = None, summary_to: object = None,
              idempotency_key: str | None = None) -> str:
        """Dial `to`; returns the new call's call_control_id, or raises DialError.

        With `idempotency_key`, the dial's command_id is made from it: Telnyx ignores a second
        dial with the same command_id, so a retry after a timeout never rings the number twice."""
        if idempotency_key is not None and not _KEY.match(idempotency_key):
            raise DialError(400, "Idempotency-Key must be 1-200 visible ASCII characters (a UUID, say)")
        if not isinstance(to, str) or not is_dialable(to):
            raise DialError(400, '"to" must be an E.164 number (+15551234567) or a SIP URI (sip:user@host)')
        if self._allow and not allowed(to, self._allow):
            # Whoever holds the API token can dial: the list keeps a leaked one off premium numbers.
            log.warning("dial-out to %s refused: it is not in LIFELINE_DIAL_ALLOW", to)
            raise DialError(403, f"{to[:100]} is not a destination LIFELINE_DIAL_ALLOW lets dial-out call "
                                 f"({', '.join(self._allow)}): add its prefix (or sip:<domain>) to "
                                 "that setting if it should be dialled", "dial_out_not_allowed")
        if dtmf is not None and (not isinstance(dtmf, str) or not _DTMF.match(dtmf)):
            raise DialError(400, '"dtmf" may hold 0-9, *, #, A-D and w/W (pauses), at most 64 of them')
        if summary_to is not None and (not isinstance(summary_to, str) or len(summary_to) > 1000 or not all(
                # "Ops <ops@example.com>" too, as LIFELINE_SUMMARY_TO takes it.
                EMAIL.match(parseaddr(a)[1]) for a in summary_to.split(","))):
            raise DialError(400, '"summary_to" must be email addresses separated by commas, '
                                 'at most 1,000 characters')
        telnyx = self._telnyx
        if telnyx is None:
            raise DialError(409, NEEDS_TELNYX, "dial_out_unavailable")
        if not self._from:
            raise DialError(409, "dialling out is off: set LIFELINE_DIAL_FROM to the number calls come from",
                            "dial_out_off")
        # The DTMF rides in client_state, which Telnyx returns with every event of the leg; so does
        # whether the dial itself started listening, which `call.answered` then need not do.
        listen = self._engine.dial_options()
        # `summary_to` rides there too: a dial whose answer timed out is recorded from its first
        # event (lifeline/calls/dialout.py `adopt`), which then knows everything the request said.
        state = encode_client_state({"role": "dialout", "dtmf": dtmf or "", "listening": bool(listen),
                                     "summary_to": summary_to})
        # The key names this request: with what it asks and where it dials from, so reusing a key for
        # another number dials that number, and two deployments on one account never collide.
        request = json.dumps([idempotency_key, self._from, to, dtmf, summary_to])
        command_id = str(uuid.uuid5(_DIAL_KEYS, request) if idempotency_key else uuid.uuid4())
        ccid, session = telnyx.dial(to, self._from, state, command_id, listen)
        try:
            self._units.run(internal_event("lifeline.dial", ccid), lambda ctx: dialout.placed(
                ctx, ccid, session, to, self._from or "", summary_to, dtmf))  # once, if events came first
        except Exception:
            # The call rings but nothing here knows it: none of its events would find a record,
            # and the client, told to retry, would place a second one. End it, then report.
            log.error("dialled %s (%s) but could not record it; hanging it up", to, ccid)
            telnyx.send(Command(command_id_for(ccid, "hangup"), ccid, "hangup", {}))
            raise
        return ccid
