"""gunicorn settings: threads hold webhooks (and, later, media sockets) cheaply."""

worker_class = "gthread"
workers = 2
threads = 16
timeout = 30


def on_starting(server):  # type: ignore[no-untyped-def]
    """Before any worker starts: stop with one line unless the schema is current (no worker
    ever migrates; `flask db upgrade` does, once per deploy)."""
    from lifeline.startup import require_current_schema
    require_current_schema()


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Start the call monitor's schedule in each worker (sweeps never double-process a call)."""
    lifeline = worker.wsgi.extensions["lifeline"]
    if lifeline.settings.monitor:
        lifeline.monitor.start()
