"""gunicorn settings: threads hold webhooks (and, later, media sockets) cheaply."""

worker_class = "gthread"
workers = 2
threads = 16
timeout = 30


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Start the call monitor's schedule in each worker (sweeps never double-process a call)."""
    lifeline = worker.wsgi.extensions["lifeline"]
    if lifeline.settings.monitor:
        lifeline.monitor.start()
    lifeline.outputs.start()  # summaries, webhooks and email out: safe on every worker
