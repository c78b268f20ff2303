"""While the database schema is not the code's, every request is answered 503 saying why; the
gate looks again now and then, so a server started before `flask db upgrade` serves once it ran."""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from flask.typing import ResponseReturnValue

from ivr.errors import StoreError, error_response

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
