"""`flask simulate --app-url`: emulated callers for a Lifeline run elsewhere (gunicorn, its database).

The emulator serves Telnyx's API on a fixed loopback port with keys kept in
`instance/emulator-keys.json`, so the settings the app is given once (`TELNYX_API_KEY`,
`TELNYX_PUBLIC_KEY`, `TELNYX_API_BASE_URL`) stay right from one run to the next.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from nacl.signing import SigningKey

from lifeline.ivr.security import sign

from .app_api import AppApi
from .caller import CallResult
from .emulator import Emulator
from .runner import play_all, read_record
from .scenario import Scenario
from .server import ServerThread, emulator_app
from .twilio.emulator import TwilioEmulator
from .twilio.server import twilio_emulator_app

KEYS_FILE = "emulator-keys.json"
TWILIO_KEYS_FILE = "emulator-twilio-account.json"


class ExternalAppError(Exception):
    """The app at --app-url cannot take the emulator's calls; the message says what to change."""


def kept_secret(path: Path, make: Callable[[], str]) -> str:
    """A secret made once by `make` and kept in `path` (created readable by its owner only, never
    readable by others in between); read back on every later run."""
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(value + "\n")
    return value


def emulator_keys(instance: Path) -> tuple[str, SigningKey]:
    """The emulator's API key and webhook signing key: made once, then read back (owner-only file)."""
    kept = json.loads(kept_secret(instance / KEYS_FILE, lambda: json.dumps({
        "api_key": f"KEY_emulator_{secrets.token_hex(12)}",
        "signing_seed": bytes(SigningKey.generate()).hex()})))
    return str(kept["api_key"]), SigningKey(bytes.fromhex(kept["signing_seed"]))


def twilio_account(instance: Path) -> tuple[str, str]:
    """The Twilio emulator's Account SID and Auth Token: made once, then read back (owner-only file)."""
    kept = json.loads(kept_secret(instance / TWILIO_KEYS_FILE, lambda: json.dumps({
        "account_sid": "AC" + secrets.token_hex(16), "auth_token": secrets.token_hex(16)})))
    return str(kept["account_sid"]), str(kept["auth_token"])


class ExternalRun:
    """The emulator on `port`, sending its webhooks to the app at `app_url`."""

    def __init__(self, app_url: str, port: int, instance: Path, speed: float, api_token: str | None,
                 provider: str = "telnyx") -> None:
        self.app_url = app_url.rstrip("/")
        self.provider = provider
        # Either emulator, as in Simulation: the callers drive both through the same methods.
        self.emulator: Any
        if provider == "twilio":
            sid, token = twilio_account(instance)
            self.emulator = TwilioEmulator(speed=speed, account_sid=sid, auth_token=token)
            self._server = ServerThread(twilio_emulator_app(self.emulator), port=port)
        else:
            api_key, signing_key = emulator_keys(instance)
            self.emulator = Emulator(api_key=api_key, speed=speed, signing_key=signing_key)
            self._server = ServerThread(emulator_app(self.emulator), port=port)
        self._api = AppApi(self.app_url, api_token) if api_token else None

    def settings(self) -> dict[str, str]:
        """What the app must be started with to take this emulator's calls."""
        if isinstance(self.emulator, TwilioEmulator):
            # Twilio signs each request with the URL it requested: the app must know it as its own.
            return {"TWILIO_ACCOUNT_SID": self.emulator.account_sid,
                    "TWILIO_AUTH_TOKEN": self.emulator.auth_token,
                    "TWILIO_API_BASE_URL": self._server.url, "LIFELINE_PUBLIC_URL": self.app_url}
        return {"TELNYX_API_KEY": self.emulator.api_key, "TELNYX_PUBLIC_KEY": self.emulator.public_key_b64,
                "TELNYX_API_BASE_URL": f"{self._server.url}/v2"}

    def __enter__(self) -> ExternalRun:
        self._server.start()
        self.emulator.base_url = self._server.url
        if isinstance(self.emulator, TwilioEmulator):
            self.emulator.app_url = self.app_url
        else:
            self.emulator.webhook_url = f"{self.app_url}/webhooks/telnyx"
        return self

    def check_app(self) -> None:
        """Raise ExternalAppError unless the app answers and accepts this emulator's signature."""
        try:
            httpx.get(f"{self.app_url}/healthz", timeout=5)
        except httpx.HTTPError as exc:
            raise ExternalAppError(f"nothing answers at {self.app_url} ({exc.__class__.__name__}): start "
                                   "the app first (gunicorn --config gunicorn.conf.py app:app)") from None
        # A signed body that is no event: the signature is checked first, so a right key gets 400
        # (malformed, nothing stored) and a wrong one 403 (404: the provider is not configured).
        try:
            answer = self._signed_nothing()
        except httpx.HTTPError as exc:
            raise ExternalAppError(f"the app at {self.app_url} did not answer a webhook "
                                   f"({exc.__class__.__name__})") from None
        if answer.status_code in (403, 404):
            wanted = ", ".join(f"{k}={v}" for k, v in self.settings().items())
            raise ExternalAppError(f"the app at {self.app_url} refuses the emulator's webhooks (HTTP "
                                   f"{answer.status_code}): start it (or reload it with HUP) with {wanted}")

    def _signed_nothing(self) -> httpx.Response:
        """POST a correctly signed request that carries no event to the app's provider webhook."""
        if isinstance(self.emulator, TwilioEmulator):
            url = f"{self.app_url}/webhooks/twilio/status"
            signature = self.emulator.validator.compute_signature(url, {})
            return httpx.post(url, data={}, headers={"X-Twilio-Signature": signature}, timeout=5)
        body = b"{}"
        headers = {"Content-Type": "application/json",
                   **sign(self.emulator.signing_key, body, int(time.time()))}
        return httpx.post(f"{self.app_url}/webhooks/telnyx", content=body, headers=headers, timeout=5)

    def run(self, scenarios: Sequence[Scenario], concurrency: int,
            on_result: Callable[[CallResult], None] | None = None) -> list[CallResult]:
        """Play every scenario, `concurrency` at a time; results in input order."""
        return play_all(self.emulator, scenarios, self._api, concurrency, on_result, self._read_record)

    def _read_record(self, result: CallResult) -> None:
        """The app's outcome and why it decided, through its API (when a token was given)."""
        if self._api is not None:
            read_record(result, self._api.call_detail(result.leg.call_control_id))

    def stream_problems(self) -> list[str]:
        """What to change when the app's media sockets could not be reached: its callers were
        heard by nobody, and their scenarios fail on the transfer, not on this."""
        if not isinstance(self.emulator, Emulator):
            return []  # the Twilio emulator's callers fail on the transfer, with its own errors logged
        return [f"the emulator could not open {count} media stream(s) at {url}: the app asks Telnyx to "
                f"stream each call's audio to LIFELINE_PUBLIC_URL; start the app with one this machine "
                f"reaches (for the app at {self.app_url}: LIFELINE_PUBLIC_URL={self.app_url})"
                for (url, reason), count in sorted(self.emulator.failed_streams().items())
                if reason == "connection_failed"]

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.emulator.close()
        self._server.stop()
