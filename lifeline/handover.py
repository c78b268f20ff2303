"""A reload's handover between worker generations: the old workers serve until the new are ready.

gunicorn's reload (HUP) forks the new workers and at once asks the old ones to stop. A new worker
then needs seconds (the app, the listening model) before it accepts a connection, and nobody would
serve in between: a provider's webhooks would wait, time out and be redelivered late. So the
master announces each reload's generation and worker count in a file before forking; a new worker
marks itself ready once it serves; an old worker asked to stop while its successors are announced
and not all ready serves on until they are (bounded by gunicorn's graceful timeout).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

_FOLDER = "lifeline-handover"


def _folder(master_pid: int) -> Path | None:
    # In the master's shared runtime folder (gunicorn.conf.py sets it before any worker is forked),
    # one per master: an operator's own PROMETHEUS_MULTIPROC_DIR outlives a master, and a restarted
    # master counts its reloads from 0 again.
    base = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(base) / f"{_FOLDER}-{master_pid}" if base else None


def announce(generation: int, workers: int) -> None:
    """In the master, before the reload forks: the generation to come and how many workers it has."""
    folder = _folder(os.getpid())
    if folder is None:
        return
    folder.mkdir(exist_ok=True)
    for stale in folder.glob("ready-*"):  # an earlier generation's: never asked about again
        stale.unlink(missing_ok=True)
    written = folder / "generation.new"
    written.write_text(f"{generation} {workers}")
    written.replace(folder / "generation")  # whole or not at all, for workers reading it


def forget() -> None:
    """In the master as it stops: its handover folder goes."""
    folder = _folder(os.getpid())
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def current() -> tuple[int, int]:
    """In a worker: its master's latest announced generation and its worker count; (0, 0) before
    any reload."""
    folder = _folder(os.getppid())
    try:
        generation, workers = (folder / "generation").read_text().split() if folder else ("0", "0")
        return int(generation), int(workers)
    except (OSError, ValueError):
        return 0, 0


def mark_ready(generation: int) -> None:
    """In a worker that now serves: one more of its generation is ready."""
    folder = _folder(os.getppid())
    if folder is not None and folder.is_dir():
        (folder / f"ready-{generation}-{os.getpid()}").touch()


def successors_pending(own: int) -> bool:
    """True while a later generation is announced and not all of its workers are ready."""
    generation, workers = current()
    if generation <= own:
        return False  # no reload: a plain stop
    folder = _folder(os.getppid())
    ready = len(list(folder.glob(f"ready-{generation}-*"))) if folder else workers
    return ready < workers
