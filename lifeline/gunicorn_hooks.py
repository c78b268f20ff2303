"""What gunicorn.conf.py hands gunicorn: the start-up check, the log format, metrics, the monitor."""

from __future__ import annotations

import logging
import os
from typing import Any

from gunicorn import glogging

from lifeline.ivr.errors import ConfigError, LifelineError
from lifeline.ivr.store import MEMORY_URL, open_store

from . import handover

_ENV_FILE_KEYS = "_LIFELINE_GUNICORN_ENV_FILE_KEYS"  # the settings .env gave, for a USR2 successor
# The master's state across gunicorn's reloads (HUP re-reads gunicorn.conf.py; this module stays).
_state: dict[str, Any] = {"format": "text", "secrets": (), "memory": False, "env_owned": set(),
                          "env_path": None, "prepared": False, "root_handlers": [],
                          "generation": 0}


def prepare() -> None:
    """Check everything once in the master: problems are printed and gunicorn exits. On a reload
    (HUP) the check was made before it began (`on_starting` guards HUP), so this only takes the
    settings in force now."""
    from .environment import env_file_path, load_env_file
    from .startup import check_or_exit, secrets_of

    if not _state["prepared"]:
        # Before gunicorn's --chdir: a reload reads this same file, wherever it then runs.
        _state["env_path"] = env_file_path()
        # A master started by an upgrade in place (USR2) inherits the old one's environment, .env's
        # values included: those are still .env's, read again now and at each reload.
        inherited = {k for k in os.environ.get(_ENV_FILE_KEYS, "").split(",") if k}
        _state["env_owned"] = load_env_file(inherited, path=_state["env_path"])
        os.environ[_ENV_FILE_KEYS] = ",".join(sorted(_state["env_owned"]))
    settings = check_or_exit()
    _state["format"] = settings.log_format
    _state["secrets"] = tuple(secrets_of(settings))
    _state["memory"] = settings.database_url == MEMORY_URL
    _state["prepared"] = True


def reload_problems() -> list[str]:
    """Read `.env` again and check every setting and file as start-up does; the problem lines (the
    environment left as it was if there are any), or [] with the new environment in force."""
    from .environment import load_env_file
    from .startup import check, problem_lines

    before = dict(os.environ)
    try:
        owned = load_env_file(_state["env_owned"], path=_state["env_path"])
        settings = check()
        # The reload reads gunicorn.conf.py again, whose check stops the master on a schema it
        # cannot serve (a newer release migrated it): refuse the reload instead.
        store = open_store(settings.database_url)
        try:
            behind = store.schema_problem()
        finally:
            store.close()
        if behind:
            raise ConfigError(behind)
    except Exception as exc:  # noqa: BLE001 - any failure refuses the reload: one escaping would stop the master
        os.environ.clear()
        os.environ.update(before)
        return problem_lines(exc) if isinstance(exc, LifelineError) else [f"{exc.__class__.__name__}: {exc}"]
    _state["env_owned"] = owned
    os.environ[_ENV_FILE_KEYS] = ",".join(sorted(owned))
    return []


def guard_reload(server: Any) -> None:
    """Make gunicorn's reload (HUP) check the settings, menu and rules first, and refuse it with
    the problems logged when they are wrong: a reload would otherwise stop the master (and its
    calls) on a typo, since new workers that cannot start halt gunicorn."""
    reload = server.handle_hup

    def checked_reload() -> None:
        problems = reload_problems()
        if problems:
            server.log.error("reload refused; the workers go on with the settings and files they "
                             "started with. Fix these, then send HUP again:\n  %s", "\n  ".join(problems))
            return
        reload()  # announces the next generation (`on_reload`) before it forks it

    server.handle_hup = checked_reload


class Logger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger writing Lifeline's line format; the app's own loggers write through it."""

    def setup(self, cfg: Any) -> None:
        """Set gunicorn's handlers up, then give them our format and masking, and share them."""
        super().setup(cfg)
        from lifeline.ivr.logs import make_handler

        template = make_handler(_state["format"], _state["secrets"])
        root = logging.getLogger()
        # A reload builds a new logger: the handlers of the one before must not write each line too.
        for stale in _state["root_handlers"]:
            root.removeHandler(stale)
        _state["root_handlers"] = list(self.error_log.handlers)
        for handler in self.error_log.handlers:
            handler.setFormatter(template.formatter)
            for found in template.filters:
                handler.addFilter(found)
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(self.error_log.level)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)


def on_reload(server: Any) -> None:
    """A reload has read its settings and is about to fork the new workers: announce them as the
    next generation, whom the running workers serve until (lifeline/handover.py), so a reload
    leaves no gap in serving. Their number is the one just read."""
    _state["generation"] += 1
    handover.announce(_state["generation"], server.cfg.workers)


def post_worker_init(worker: Any) -> None:
    """Load the model and start the background work, then tell a reload's old workers this one serves."""
    generation, _ = handover.current()
    worker.lifeline_generation = generation
    lifeline = worker.wsgi.extensions["lifeline"]
    lifeline.load_models()  # the caller's first line must not wait for the models
    lifeline.start_background()  # the monitor (sweeps never double-process a call) and the outputs
    handover.mark_ready(generation)


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: its live gauges no longer count."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def taken_address(server: Any) -> str | None:
    """The first of gunicorn's --bind addresses another program holds, with why, or None."""
    from .startup import bind_problem

    if server.LISTENERS or server.master_pid or os.environ.get("LISTEN_FDS") or server.cfg.reuse_port:
        return None  # sockets handed over (USR2, systemd) or shared on purpose: gunicorn binds none
    for address in server.cfg.address:
        if isinstance(address, tuple):  # a unix socket's stale file gunicorn replaces itself
            problem = bind_problem(str(address[0]), int(address[1]))
            if problem is not None:
                return f"{address[0]}:{address[1]} ({problem})"
    return None


def on_starting(server: Any) -> None:
    """Stop when the workers could not share their calls or the port is taken; say where their
    metrics are gathered."""
    from .startup import EX_CONFIG

    taken = taken_address(server)
    if taken is not None:
        # gunicorn would try five times, a second apart, and print two lines each time.
        server.log.error("cannot serve on %s: another server has it; stop it or give --bind", taken)
        raise SystemExit(EX_CONFIG)

    if _state["memory"] and server.cfg.workers > 1:
        # Each worker would hold its own calls, and a call's next webhook may reach another one.
        server.log.error("DATABASE_URL=memory:// keeps calls in one process, and gunicorn would start %d "
                         "workers: start it with --workers 1, or set DATABASE_URL to sqlite:/// or "
                         "postgresql://", server.cfg.workers)
        raise SystemExit(EX_CONFIG)
    server.log.info("metrics of all workers are shared in %s", os.environ["PROMETHEUS_MULTIPROC_DIR"])
    guard_reload(server)
