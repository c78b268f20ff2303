"""While the database schema is not the code's, every request is answered 503 saying why; the
gate looks again now and then, so a server started before `flask db upgrade` serves once it ran."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from flask.typing import ResponseReturnValue

from lifeline.ivr.errors import StoreError, error_response

log = logging.getLogger(__name__)
RECHECK_S = 5.0


class SchemaCheck(Protocol):
    def schema_problem(self) -> str | None: ...


class Holder(Protocol):
    schema_problem: str | None


class SchemaGate:
    """A before-request hook: 503 while `holder.schema_problem` is set, re-checked every RECHECK_S."""

    def __init__(self, store: SchemaCheck, holder: Holder, recheck_s: float = RECHECK_S) -> None:
        self._store = store
        self._holder = holder
        self._recheck_s = recheck_s
        self._checked_at = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self) -> ResponseReturnValue | None:
        problem = self._holder.schema_problem
        if problem is None:
            return None
        with self._lock:
            if time.monotonic() - self._checked_at >= self._recheck_s:
                self._checked_at = time.monotonic()
                try:
                    self._holder.schema_problem = problem = self._store.schema_problem()
                except StoreError as exc:
                    problem = str(exc)
                if problem is None:
                    log.info("the database schema is current now: serving")
                    return None
        return error_response(503, f"{problem} (this server looks again every {self._recheck_s:g} s)")


class SchemaWait:
    """Background work (the monitor, the outputs) that starts once the schema is current.

    Started while the schema is behind, that work would fail every few seconds with a traceback
    burying the one line that says to run `flask db upgrade`; it waits quietly instead.
    """

    def __init__(self, store: SchemaCheck, holder: Holder, recheck_s: float | None = None) -> None:
        self._store = store
        self._holder = holder
        self._recheck_s = RECHECK_S if recheck_s is None else recheck_s  # read late: tests shorten it
        self._stop = threading.Event()
        # Held from the stop check to the end of `work`, and by stop(): a close() during a slow
        # schema check can no longer return before the work starts on an app it has closed.
        self._starting = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self, work: Callable[[], None]) -> None:
        """Run `work` now if the schema is current, else in a daemon thread as soon as it is."""
        if self._holder.schema_problem is None:
            work()
            return
        log.info("the monitor and the outputs wait for the schema (checked every %g s)", self._recheck_s)
        self._thread = threading.Thread(target=self._wait, args=(work,), name="lifeline-schema-wait",
                                        daemon=True)
        self._thread.start()

    def _wait(self, work: Callable[[], None]) -> None:
        while not self._stop.wait(self._recheck_s):
            try:
                problem = self._store.schema_problem()
            except StoreError:
                continue  # the database is away; the gate's 503 says so to callers
            if problem is None:
                self._holder.schema_problem = None  # requests pass at once, not at the gate's next look
                with self._starting:
                    if self._stop.is_set():
                        return
                    log.info("the database schema is current now: the monitor and the outputs start")
                    try:
                        work()
                    except Exception:  # said once: this thread has nobody else to tell
                        log.exception("the monitor or the outputs failed to start")
                return

    def stop(self) -> None:
        """Stop waiting (the app is closing); work not started stays unstarted, and work already
        starting has started when this returns (so the caller's close stops it too)."""
        self._stop.set()
        with self._starting:
            pass
        if self._thread is not None:
            self._thread.join(timeout=self._recheck_s + 1)
