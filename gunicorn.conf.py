"""gunicorn settings: an asyncio front per worker (no socket holds a thread); checks run once, up front.

Loading this file (gunicorn reads ./gunicorn.conf.py by default) checks the settings, menu, rules
and database in the master process: a problem prints its lines once and gunicorn exits before
any worker starts. Metrics from all workers are shared through PROMETHEUS_MULTIPROC_DIR.
"""

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

# prometheus_client picks its multiprocess mode when first imported (workers inherit the choice),
# so the shared folder is set before anything of ours is imported.
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
# A reload (HUP) reads this file again in the same master: the running workers' metric files stay.
_reloading = os.environ.get("_LIFELINE_GUNICORN_MASTER_PID") == str(os.getpid())
os.environ["_LIFELINE_GUNICORN_MASTER_PID"] = str(os.getpid())
if _reloading:
    _own_metrics_dir = os.environ.get("_LIFELINE_GUNICORN_OWN_METRICS_DIR") or None
elif _metrics_dir and _metrics_dir != os.environ.get("_LIFELINE_GUNICORN_OWN_METRICS_DIR"):
    # The user's folder. (One an older master made for itself and this one inherited, by an
    # upgrade in place with USR2, is not: that master removes it when it stops.)
    Path(_metrics_dir).mkdir(parents=True, exist_ok=True)
    for _stale in Path(_metrics_dir).glob("*.db"):
        _stale.unlink()  # files of an earlier run would be added to this run's counts
    _own_metrics_dir = None
else:
    _own_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="lifeline-metrics-")
    os.environ["_LIFELINE_GUNICORN_OWN_METRICS_DIR"] = _own_metrics_dir
_master_pid = os.getpid()


def _remove_own_metrics_dir() -> None:
    """Remove the metrics folder this run made, however the master ends: a start-up check that
    stops it, a port in use, or a normal shutdown (gunicorn's on_exit misses the first two)."""
    # Workers are forked from the master and inherit this hook: only the master removes it.
    if _own_metrics_dir and os.getpid() == _master_pid:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)


atexit.register(_remove_own_metrics_dir)


def on_exit(server):  # type: ignore[no-untyped-def]
    """The master's normal shutdown (under --daemon its pid is no longer the one recorded above)."""
    from lifeline import handover

    handover.forget()  # in a folder of the operator's own, it would outlive the master
    if _own_metrics_dir:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)

# gunicorn applies --chdir after reading this file: make the project importable from anywhere.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lifeline.gunicorn_hooks import (  # noqa: E402
    Logger,
    child_exit,
    on_reload,
    on_starting,
    post_worker_init,
    prepare,
)

# An asyncio loop reads every connection; Flask runs on threads only once a request is whole, and
# media sockets hold no thread at all (lifeline/server.py; why: docs/architecture.md "Serving").
worker_class = "lifeline.server.Worker"
workers = 2
threads = 16  # per pool: one for webhooks, one for the API, console and health (the feed has its own)
timeout = 30
# An idle kept-alive connection costs a coroutine, not a thread: keep it longer than clients keep
# theirs, so a client never reuses a connection the server is closing at that moment.
keepalive = 30
# Connections each worker holds at once (gunicorn's own asyncio worker does not enforce it;
# lifeline/server.py does, lowered to fit the open-files limit with room for the database and
# outbound clients). Past it, the connection that has waited longest for a request is closed to
# make room, or, with none waiting, the new one is refused (503): never "Too many open files".
worker_connections = 1000
websocket_max_message_size = 64 * 1024  # a larger media frame closes its socket (1009) before it is read
logger_class = Logger
# gunicorn 27's control socket is one path per user by default ($HOME/.gunicorn/gunicorn.ctl), so
# two instances of one user (`flask bench --instances`, a blue/green pair) would share it. Lifeline
# is run with signals (HUP, USR2, TERM) and needs none.
control_socket_disable = True

prepare()

__all__ = ["child_exit", "control_socket_disable", "keepalive", "logger_class", "on_exit",
           "on_reload", "on_starting", "post_worker_init", "threads", "timeout", "websocket_max_message_size",
           "worker_class", "worker_connections", "workers"]
