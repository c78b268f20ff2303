"""Runs scenarios: the real app on a loopback port, the emulator on another, callers in threads."""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any

from flask import Flask

from lifeline import create_app
from lifeline.ivr.config import settings_source

from .app_api import AppApi
from .caller import CallResult, judge_listening, play
from .emulator import Emulator
from .report import explain
from .scenario import Scenario
from .server import ServerThread, emulator_app
from .twilio.emulator import TwilioEmulator
from .twilio.server import twilio_emulator_app

# Settings that reach real systems outside the simulation: taken from the environment (a developer's
# .env for production), they would send simulated calls' events, summaries and recordings to real
# receivers, inboxes and buckets. A simulation has them only when its caller passes them.
SIMULATED_SETTLE_S = "2"
REAL_OUTPUTS = ("LIFELINE_EVENT_WEBHOOKS", "LIFELINE_EVENT_SECRET", "LIFELINE_SMTP_URL",
                "LIFELINE_SUMMARY_TO", "LIFELINE_RECORDINGS_BUCKET", "LIFELINE_RECORDINGS_S3_ENDPOINT")


def twilio_side_telnyx(engine: str) -> dict[str, str]:
    """Telnyx's settings for an app that takes a Twilio emulator's calls: none (blanked over any
    the environment holds, so the app runs Twilio-only as a Twilio user's would), except for the
    telnyx engine, which only a deployment with Telnyx may choose; that Telnyx is never called."""
    if engine != "telnyx":
        return {"TELNYX_API_KEY": "", "TELNYX_PUBLIC_KEY": ""}
    unused = Emulator()
    telnyx = {"TELNYX_API_KEY": unused.api_key, "TELNYX_PUBLIC_KEY": unused.public_key_b64}
    unused.close()
    return telnyx


class Simulation:
    """A Lifeline app wired to a fresh emulator and a throwaway database."""

    def __init__(self, config: Mapping[str, object], engine: str = "telnyx", speed: float = 1.0,
                 database_url: str | None = None, provider: str = "telnyx", app_port: int = 0,
                 emulator_port: int = 0) -> None:
        self._ports = (app_port, emulator_port)  # 0: any free port
        self._base_config = dict(config)
        self._engine = engine
        self._database_url = database_url
        self.provider = provider
        self.emulator: Any = TwilioEmulator(speed=speed) if provider == "twilio" else Emulator(speed=speed)
        self._tmp: Path | None = None
        self.app: Flask | None = None
        self.config: dict[str, object] = {}
        self.api_token = ""
        self.token_made = False  # True when the token is this simulation's own, not from the settings
        self.api: AppApi | None = None

    def __enter__(self) -> Simulation:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        serve = twilio_emulator_app if self.provider == "twilio" else emulator_app
        self._emulator_server = ServerThread(serve(self.emulator), port=self._ports[1]).start()
        self.emulator.base_url = self._emulator_server.url
        holder: dict[str, Any] = {}
        self._holder = holder
        self._app_server = ServerThread(lambda environ, start: holder["app"](environ, start),
                                        port=self._ports[0])
        database_url = self._database_url
        if database_url is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="lifeline-sim-"))
            database_url = f"sqlite:///{self._tmp / 'simulation.db'}"
        self._recordings = Path(tempfile.mkdtemp(prefix="lifeline-recordings-"))
        # The API is always on: scripted supervisors (`listening` turns) use it, and a developer
        # watching a simulated call needs a token. One from the settings is kept, else one is made.
        given = settings_source(self._base_config).get("LIFELINE_API_TOKEN", "").strip()
        self.api_token, self.token_made = given or secrets.token_urlsafe(24), not given
        config: dict[str, object] = {
            # A simulated call's last words are heard within a second or two of its hang-up (the
            # emulator transcribes at once; the local engine here): its transcript and summary
            # need not wait the minute a real provider's late transcriptions may take.
            "LIFELINE_TRANSCRIPT_SETTLE_S": SIMULATED_SETTLE_S,
            **dict.fromkeys(REAL_OUTPUTS, ""),
            **self._base_config,
            **self._provider_settings(),
            "LIFELINE_PUBLIC_URL": self._app_server.url,
            "LIFELINE_ENGINE": self._engine,
            "DATABASE_URL": database_url,
            "LIFELINE_RECORDINGS_DIR": str(self._recordings),
            "LIFELINE_API_TOKEN": self.api_token,
        }
        self.config = config
        try:
            self.app = create_app(config, migrate=True)  # its own fresh database
        except Exception:
            self._stop_servers()
            raise
        holder["app"] = self.app
        self.app.extensions["lifeline"].load_models()  # not on the first caller's line
        self.app.extensions["lifeline"].outputs.start()
        self._app_server.start()
        self.api = AppApi(self._app_server.url, self.api_token)
        if self.provider == "twilio":
            self.emulator.app_url = self._app_server.url
        else:
            self.emulator.webhook_url = f"{self._app_server.url}/webhooks/telnyx"
        return self

    @property
    def url(self) -> str:
        """Where the app under simulation is served, e.g. http://127.0.0.1:54321."""
        return str(self._app_server.url)

    def _provider_settings(self) -> dict[str, str]:
        """The settings pointing the app at this simulation's emulator."""
        if self.provider == "twilio":
            return {**twilio_side_telnyx(self._engine), **self.emulator.app_settings()}
        return {"TELNYX_API_KEY": self.emulator.api_key, "TELNYX_PUBLIC_KEY": self.emulator.public_key_b64,
                "TELNYX_API_BASE_URL": f"{self.emulator.base_url}/v2"}

    def restart_app(self) -> Flask:
        """Stop the app as a crash or deploy would, and serve a new one on the same port and data."""
        if self.app is not None:
            self.app.extensions["lifeline"].close()
        self.app = create_app(self.config)  # the database was migrated when the first app started
        self.app.extensions["lifeline"].load_models()
        self.app.extensions["lifeline"].outputs.start()
        self._holder["app"] = self.app
        return self.app

    def run(self, scenarios: Sequence[Scenario], concurrency: int = 1,
            on_result: Callable[[CallResult], None] | None = None) -> list[CallResult]:
        """Play every scenario, `concurrency` at a time; results come back in input order."""
        return play_all(self.emulator, scenarios, self.api, concurrency, on_result, self._attach_heard)

    def _attach_heard(self, result: CallResult) -> None:
        """What the app heard and how it scored it, from the app's own record of the call."""
        if self.app is None:
            return
        lifeline = self.app.extensions["lifeline"]
        lifeline.engine.wait_idle(10)
        call_log = result.leg.log
        # Both parties, from the feed: the agent's words never enter the caller's messages.
        for event in lifeline.outputs.store.feed_for_call(result.leg.call_control_id, ("message",)):
            result.heard.append({"t_ms": round((event.created_at - call_log.t0_wall) * 1000, 1),
                                 "kind": "heard", "type": "message", "engine": event.data["engine"],
                                 "party": event.data["party"], "text": event.data["text"],
                                 "score": event.data["score"], "label": event.data["label"]})
        judge_listening(result)  # what was heard of a paused stretch is known only now
        read_record(result, {"call": asdict(call) if (call := lifeline.store.get_call(
            result.leg.call_control_id)) else None,
            "decisions": lifeline.store.decisions(result.leg.call_control_id),
            "messages": lifeline.store.messages(result.leg.call_control_id)})

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.emulator.stop_streams()  # no stream may start connecting to a server being stopped
        self._stop_servers()
        if self.app is not None:
            self.app.extensions["lifeline"].close()
        self.emulator.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        shutil.rmtree(self._recordings, ignore_errors=True)

    def _stop_servers(self) -> None:
        for server in (getattr(self, "_app_server", None), getattr(self, "_emulator_server", None)):
            if server is not None:
                try:
                    server.stop()
                except Exception:  # noqa: BLE001 - a server that never started has nothing to stop
                    pass


def access_line(url: str, token: str | None, *notes: str) -> str:
    """Where an app under simulation serves its console and API, and the token they take; None names
    the user's own LIFELINE_API_TOKEN instead of printing a secret they set."""
    who = f"the API token {token}" if token is not None else "your LIFELINE_API_TOKEN"
    parts = [f"{url}/dashboard  (sign in with {who}", f"API {url}/api with 'Authorization: Bearer <token>'",
             *notes]
    return "; ".join(parts) + ")"


def read_record(result: CallResult, detail: Mapping[str, Any] | None) -> None:
    """Take the app's outcome and why it decided as it did from its record of the call (the shape
    of GET /api/calls/<id>); None leaves them unknown."""
    if detail is None:
        return
    call = detail.get("call")
    if isinstance(call, Mapping):
        result.app_outcome = call.get("outcome") or None
    result.why = explain(detail.get("decisions") or [], detail.get("messages") or [],
                         bool(result.transfer_commands))


def play_all(emulator: Emulator, scenarios: Sequence[Scenario], api: AppApi | None,
             concurrency: int, on_result: Callable[[CallResult], None] | None = None,
             each: Callable[[CallResult], None] | None = None) -> list[CallResult]:
    """Play every scenario through the emulator, `concurrency` at a time, each caller with a number
    of its own; `each` completes a result (what the app heard) before `on_result` sees it. Results
    come back in input order."""
    results: dict[int, CallResult] = {}
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="caller") as pool:
        futures = {pool.submit(play, emulator, s, caller_number(i), api): i for i, s in enumerate(scenarios)}
        for future in as_completed(futures):
            result = future.result()
            if each is not None:
                each(result)
            results[futures[future]] = result
            if on_result:
                on_result(result)
    return [results[i] for i in range(len(scenarios))]


def caller_number(index: int) -> str:
    """A distinct caller id for the index-th simulated call (E.164, fictional 555 range)."""
    return f"+1555{index % 10_000_000:07d}"
