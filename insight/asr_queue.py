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
    """Worker threads over one priority queue; `on_done` hears of every job that ran."""

    def __init__(self, decode: Decode, workers: int, max_wait_s: float,
                 on_done: Callable[[Job], None], clock: Callable[[], float] = time.monotonic,
                 name: str = "lifeline-asr", start: bool = True) -> None:
        """`start=False` leaves the running to `run_one` (tests); workers otherwise start on first use."""
        self._decode = decode
        self._max_wait_s = max_wait_s
        self._on_done = on_done
        self._clock = clock
        self._heap: list[tuple[float, int, Job]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._busy = 0
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True)
                         for n in range(workers)] if start else []
        self._started = False

    def submit(self, job: Job) -> Job:
        """Queue a job behind every job whose speech ended earlier."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the transcription queue is closed")
            job.queued_at = self._clock()
            heapq.heappush(self._heap, (job.ended_at, next(self._order), job))
            self._changed.notify()
            start, self._started = not self._started, True
        if start:  # threads only for engines that get work (tests build many apps)
            for thread in self._threads:
                thread.start()
        return job

    def cancel(self, job: Job) -> None:
        """Drop a job that is no longer wanted; a job already running finishes, unread."""
        with self._lock:
            job.cancelled = True
            self._changed.notify_all()

    def run_one(self) -> Job | None:
        """Take the oldest live job and run it on this thread (the workers' loop; also tests)."""
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

    def _work(self) -> None:
        while True:
            with self._lock:
                self._changed.wait_for(lambda: self._closed or any(not j.cancelled for *_, j in self._heap))
                if self._closed and not self._heap:
                    return
            self.run_one()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is queued or running; False on timeout."""
        with self._lock:
            return self._changed.wait_for(
                lambda: self._busy == 0 and all(j.cancelled for *_, j in self._heap), timeout)

    def close(self) -> None:
        """Finish what is queued, then stop the workers."""
        with self._lock:
            self._closed = True
            self._changed.notify_all()
        for thread in self._threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout=30)
