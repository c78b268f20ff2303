"""The transcription queue shared by every call: oldest finished speech first, with a wait bound.

A fixed set of worker threads (one per CPU core by default) takes jobs in order of when their
speech ended, whichever call they belong to, so no caller queues behind another caller's newer
words. A job that has already waited longer than `max_wait_s` when a worker picks it up is
decoded greedily (beam 1, about a third less CPU), which drains a backlog instead of letting the
waits grow; the bench reports waits and how many jobs needed that.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .endpoint import Utterance
from .whisper import Transcript

log = logging.getLogger(__name__)
Decode = Callable[[Utterance, bool], Transcript]


@dataclass(eq=False)
class Job:
    """One utterance to transcribe, and what became of it."""

    call_id: str
    utterance: Utterance
    ended_at: float  # monotonic time the speech ended (orders the queue)
    speculative: bool
    queued_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    fast: bool = False
    cancelled: bool = False
    transcript: Transcript | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def wait_s(self) -> float | None:
        """Seconds from queued to picked up (None until a worker takes it)."""
        return None if self.started_at is None else self.started_at - self.queued_at


class TranscriptionQueue:
    """Worker threads over one priority queue; `on_done` hears of every job that ran.

    Each submitted job schedules one turn of a worker, and each turn runs the oldest live job,
    which need not be the one that scheduled it: that is what puts the oldest speech first.
    The workers are a ThreadPoolExecutor's, so the interpreter joins them at exit (native model
    threads must not be torn down under a running decode).
    """

    def __init__(self, decode: Decode, workers: int, max_wait_s: float,
                 on_done: Callable[[Job], None], clock: Callable[[], float] = time.monotonic,
                 name: str = "lifeline-asr", start: bool = True) -> None:
        """`start=False` leaves the running to `run_one` (tests)."""
        self._decode = decode
        self._max_wait_s = max_wait_s
        self._on_done = on_done
        self._clock = clock
        self._heap: list[tuple[float, int, Job]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._busy = 0
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) if start else None

    def submit(self, job: Job) -> Job:
        """Queue a job behind every job whose speech ended earlier."""
        with self._lock:
            job.queued_at = self._clock()
            heapq.heappush(self._heap, (job.ended_at, next(self._order), job))
            self._changed.notify_all()
        if self._pool is not None:
            self._pool.submit(self.run_one)
        return job

    def cancel(self, job: Job) -> None:
        """Drop a job that is no longer wanted; a job already running finishes, unread."""
        with self._lock:
            job.cancelled = True
            self._changed.notify_all()

    def run_one(self) -> Job | None:
        """Take the oldest live job and run it on this thread (a worker's turn; also tests)."""
        with self._lock:
            job = self._next()
            if job is None:
                return None
            self._busy += 1
        try:
            self._run(job)
        finally:
            with self._lock:
                self._busy -= 1
                self._changed.notify_all()
        return job

    def _next(self) -> Job | None:
        while self._heap:
            _, _, job = heapq.heappop(self._heap)
            if not job.cancelled:
                job.started_at = self._clock()
                job.fast = job.started_at - job.queued_at > self._max_wait_s
                return job
        return None

    def _run(self, job: Job) -> None:
        try:
            job.transcript = self._decode(job.utterance, job.fast)
        except Exception as exc:  # one bad utterance must not stop the worker
            log.exception("transcribing an utterance of %s failed", job.call_id)
            job.error = exc
        job.finished_at = self._clock()
        job.done.set()
        try:
            self._on_done(job)
        except Exception:
            log.exception("handing on the transcript of %s failed", job.call_id)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is queued or running; False on timeout."""
        with self._lock:
            return self._changed.wait_for(
                lambda: self._busy == 0 and all(j.cancelled for *_, j in self._heap), timeout)

    def close(self) -> None:
        """Finish what is queued, then stop the workers."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
