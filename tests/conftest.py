"""Shared fixtures: a clean environment, the emulator, a live app, and signed webhook builders."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import psycopg
import pytest
from flask import Flask

from lifeline import create_app
from lifeline.ivr.security import sign
from lifeline.ivr.store.sql import SqlStore
from lifeline.simulator.cli import register as register_simulator
from lifeline.simulator.emulator import Emulator
from lifeline.simulator.runner import Simulation
from lifeline.simulator.server import ServerThread, emulator_app
from lifeline.simulator.twilio.emulator import TwilioEmulator
from lifeline.simulator.twilio.server import twilio_emulator_app

ROOT = Path(__file__).resolve().parent.parent
AGENTS = "+15550001111,+15550002222"
PG_URL = os.environ.get("LIFELINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def load_script(relative: str) -> ModuleType:
    """A script of the repo that is not in a package (corpus/*.py), imported by its path."""
    name = "script_" + relative.replace("/", "_").removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look the module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's own Telnyx or Lifeline settings."""
    for name in list(os.environ):
        if name.startswith(("TELNYX_", "LIFELINE_", "SYMBL_", "TWILIO_")) or name == "DATABASE_URL":
            if name not in ("LIFELINE_REQUIRE_POSTGRES", "LIFELINE_TEST_POSTGRES_URL",
                            "LIFELINE_REQUIRE_HAPROXY", "LIFELINE_REQUIRE_BROWSER"):
                monkeypatch.delenv(name)


EmulatorT = TypeVar("EmulatorT", Emulator, TwilioEmulator)


@contextmanager
def serving(emu: EmulatorT) -> Iterator[EmulatorT]:
    """An emulator serving on loopback (its own provider's routes) until the block ends."""
    wsgi = emulator_app(emu) if isinstance(emu, Emulator) else twilio_emulator_app(emu)
    server = ServerThread(wsgi).start()
    emu.base_url = server.url
    try:
        yield emu
    finally:
        server.stop()
        emu.close()


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A Telnyx emulator serving on loopback, 20x faster than real time."""
    with serving(Emulator(speed=20)) as emu:
        yield emu
    # The strict emulator: no test may pass on a body real Telnyx would refuse, or on a webhook
    # real Telnyx would not send.
    assert emu.refused == [], f"the SDK's types refuse what the app sent: {emu.refused[:2]}"
    assert emu.webhook_problems == [], emu.webhook_problems[:5]


@pytest.fixture
def app_config(emulator: Emulator, tmp_path: Path) -> dict[str, object]:
    """Settings pointing an app at the emulator and a fresh SQLite file."""
    return {
        "TELNYX_API_KEY": emulator.api_key,
        "TELNYX_PUBLIC_KEY": emulator.public_key_b64,
        "TELNYX_API_BASE_URL": f"{emulator.base_url}/v2",
        "LIFELINE_AGENTS": AGENTS,
        "LIFELINE_ENGINE": "telnyx",
        "LIFELINE_COMMAND_TIMEOUT": "2",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'lifeline.db'}",
    }


@pytest.fixture
def app(app_config: dict[str, object]) -> Iterator[Flask]:
    """An app wired to the emulator (commands reach it over HTTP; webhooks come from tests).

    The simulator's commands are added as `app.py` adds them, so `flask simulate` can be invoked.
    """
    application = create_app(app_config, migrate=True)
    register_simulator(application)
    yield application
    application.extensions["lifeline"].close()


@pytest.fixture
def live() -> Iterator[Simulation]:
    """The app served on loopback with its own emulator sending real signed webhooks."""
    # Transcript batches hand over a call as soon as it has ended (60 s later by default).
    with Simulation({"LIFELINE_AGENTS": AGENTS, "LIFELINE_API_TOKEN": "test-token",
                     "LIFELINE_TRANSCRIPT_SETTLE_S": "0.001"}, speed=20) as sim:
        yield sim
        assert sim.emulator.refused == [], f"the SDK's types refuse: {sim.emulator.refused[:2]}"
        assert sim.emulator.webhook_problems == [], sim.emulator.webhook_problems[:5]


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A throw-away PostgreSQL schema; yields a DATABASE_URL whose search_path points at it."""
    schema = f"lifeline_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def postgres_store() -> Iterator[SqlStore]:
    """A SqlStore on a throw-away PostgreSQL schema (skipped without a server), dropped after."""
    url = postgres_url_or_skip()
    schema = f"lifeline_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    backend = SqlStore(url.replace("postgresql://", "postgresql+psycopg://"), schema_name=schema)
    try:
        yield backend
    finally:
        backend.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def postgres_url_or_skip() -> str:
    """The test PostgreSQL URL; skip visibly when absent, fail when CI requires it."""
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        message = (f"PostgreSQL not reachable at {PG_URL} ({str(exc).strip().splitlines()[0]}); "
                   "start it or set LIFELINE_TEST_POSTGRES_URL")
        if os.environ.get("LIFELINE_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return PG_URL


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    url = postgres_url_or_skip()
    name = f"lifeline_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


WebhookFactory = Callable[..., tuple[bytes, dict[str, str]]]


@pytest.fixture
def signed(emulator: Emulator) -> WebhookFactory:
    """Build a signed Telnyx webhook: signed(event_type, payload, event_id=None, ts=None)."""
    return make_signer(emulator)


def make_signer(emulator: Emulator) -> WebhookFactory:
    """A signed-webhook builder for this emulator's key."""

    def build(event_type: str, payload: dict[str, Any], event_id: str | None = None,
              ts: int | None = None) -> tuple[bytes, dict[str, str]]:
        body = json.dumps({"data": {"record_type": "event", "event_type": event_type,
                                    "id": event_id or str(uuid.uuid4()),
                                    "occurred_at": "2026-11-22T10:00:00.000000Z",
                                    "payload": payload},
                           "meta": {"attempt": 1, "delivered_to": "http://127.0.0.1/webhooks/telnyx"}})
        headers = {"content-type": "application/json",
                   **sign(emulator.signing_key, body.encode(), ts or int(time.time()))}
        return body.encode(), headers

    return build


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll a condition (for effects that happen on background threads)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


# ----- Twilio (test_twilio, test_twilio_listening) -------------------------------------------------

TWILIO_PUBLIC = "https://lifeline.example.com"
TWILIO_ACCOUNT = "AC" + "2" * 32
TWILIO_TOKEN = "twilio-test-auth-token"


@pytest.fixture
def twilio_app(app_config: dict[str, object]) -> Iterator[Flask]:
    """An app that answers a Twilio number (and its Telnyx one), behind a public URL."""
    twilio = {"TWILIO_ACCOUNT_SID": TWILIO_ACCOUNT, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
              "TWILIO_API_BASE_URL": "http://127.0.0.1:9", "LIFELINE_PUBLIC_URL": TWILIO_PUBLIC,
              "LIFELINE_ENGINE": "twilio"}
    application = create_app({**app_config, **twilio}, migrate=True)
    yield application
    application.extensions["lifeline"].close()


@pytest.fixture
def twilio_emulator() -> Iterator[TwilioEmulator]:
    """A Twilio emulator serving on loopback, 20x faster than real time."""
    with serving(TwilioEmulator(speed=20)) as emu:
        yield emu
