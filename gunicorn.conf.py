"""gunicorn settings: threads hold webhooks and media sockets cheaply; checks run once, up front.

Loading this file (gunicorn reads ./gunicorn.conf.py by default) checks the settings, menu, rules
and database in the master process: a problem prints its lines once and gunicorn exits before
any worker starts. Metrics from all workers are shared through PROMETHEUS_MULTIPROC_DIR.
"""

import sys
from pathlib import Path

# gunicorn applies --chdir after reading this file: make the project importable from anywhere.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lifeline.gunicorn_hooks import (  # noqa: E402
    Logger,
    child_exit,
    on_starting,
    post_worker_init,
    prepare,
)

worker_class = "gthread"
workers = 2
threads = 16
timeout = 30
logger_class = Logger

prepare()

__all__ = ["child_exit", "logger_class", "on_starting", "post_worker_init", "threads", "timeout",
           "worker_class", "workers"]
