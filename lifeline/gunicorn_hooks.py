"""What gunicorn.conf.py hands gunicorn: the start-up check, the log format, metrics, the monitor."""

from __future__ import annotations

import logging
import os
from typing import Any

from gunicorn import glogging

from ivr.store import MEMORY_URL

_state: dict[str, Any] = {"format": "text", "secrets": (), "memory": False}


def prepare() -> None:
    """Check everything once in the master: problems are printed and gunicorn exits."""
    from .startup import check_or_exit, secrets_of

    settings = check_or_exit()
    _state["format"] = settings.log_format
    _state["secrets"] = tuple(secrets_of(settings))
    _state["memory"] = settings.database_url == MEMORY_URL


class Logger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger writing Lifeline's line format; the app's own loggers write through it."""

    def setup(self, cfg: Any) -> None:
        """Set gunicorn's handlers up, then give them our format and masking, and share them."""
        super().setup(cfg)
        from ivr.logs import make_handler

        template = make_handler(_state["format"], _state["secrets"])
        root = logging.getLogger()
        for handler in self.error_log.handlers:
            handler.setFormatter(template.formatter)
            for found in template.filters:
                handler.addFilter(found)
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(self.error_log.level)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)


def post_worker_init(worker: Any) -> None:
    """Start the call monitor's schedule in each worker (sweeps never double-process a call)."""
    lifeline = worker.wsgi.extensions["lifeline"]
    lifeline.services.scorer.load()  # the caller's first line must not wait for the model
    lifeline.start_background()  # the monitor (sweeps never double-process a call) and the outputs


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: its live gauges no longer count."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_starting(server: Any) -> None:
    """Stop when the workers could not share their calls; say where their metrics are gathered."""
    from .startup import EX_CONFIG

    if _state["memory"] and server.cfg.workers > 1:
        # Each worker would hold its own calls, and a call's next webhook may reach another one.
        server.log.error("DATABASE_URL=memory:// keeps calls in one process, and gunicorn would start %d "
                         "workers: start it with --workers 1, or set DATABASE_URL to sqlite:/// or "
                         "postgresql://", server.cfg.workers)
        raise SystemExit(EX_CONFIG)
    server.log.info("metrics of all workers are shared in %s", os.environ["PROMETHEUS_MULTIPROC_DIR"])
