"""Hearing a call's recordings through the local engine, streamed as a live call streams them.

Kept apart from `flask evaluate`'s scoring and report: this module is part of what decides what is
heard, so kept hearings (lifeline/simulator/hearings.py) are keyed by its code, and an edit to the report
must not make every kept call be heard again.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from lifeline.insight.base import Reading

from .hearings import CallHearing, HeardLine

Hear = Callable[[Path], list[HeardLine]]


class LocalHearing:
    """Hears a call's recordings the way a live call is heard: one media stream for the whole call.

    A live stream carries silence while the menu plays and between the caller's turns, and one
    listener (endpointer state included) lives for the whole call. Opening a fresh listener per
    recording cut some says a window apart from the live path, and tiny.en heard them differently.
    """

    LEAD_S = 1.0  # the menu prompt: silence on the caller's track before the first say
    TRAIL_S = 1.0  # silence after each say, long enough to end it

    def __init__(self, settings: Any, lead_s: float = LEAD_S) -> None:
        from lifeline.insight import make_engine

        self.lead_s = lead_s

        # Recordings are fed faster than real time, so a say's second utterance queues behind its
        # first; a live call's would not. The longest wait keeps load shedding (greedy decoding
        # of late jobs) out of what is measured here.
        self._engine = make_engine(replace(settings, engine="local", transcription_max_wait_s=60.0))
        self._lock = threading.Lock()
        self._heard: dict[str, list[HeardLine]] = {}
        self._engine.bind(self._sink)
        self._engine.warm()
        self._count = 0

    def _sink(self, call_control_id: str, source_id: str, text: str, confidence: float | None,
              readings: tuple[Reading, ...] = ()) -> None:
        with self._lock:
            self._heard.setdefault(call_control_id, []).append(HeardLine(text, confidence, readings))

    @contextmanager
    def call(self) -> Iterator[Hear]:
        """One call's stream: each recording heard through it returns the messages it became."""
        from .audio import FRAME_BYTES, load_pcmu, silence

        self._count += 1
        ccid = f"evaluate-{self._count}"
        listener = self._engine.open(ccid, f"stream-{self._count}", "PCMU")  # type: ignore[attr-defined]
        chunks = itertools.count(1)

        def send(audio: bytes) -> None:
            for start in range(0, len(audio) - FRAME_BYTES + 1, FRAME_BYTES):
                listener.audio(next(chunks), audio[start:start + FRAME_BYTES])

        def hear(wav: Path) -> list[HeardLine]:
            send(load_pcmu(wav) + silence(self.TRAIL_S))
            self._engine.wait_idle(120.0)
            with self._lock:
                return self._heard.pop(ccid, [])

        send(silence(self.lead_s))
        try:
            yield hear
        finally:
            listener.close()
            self._engine.wait_idle(120.0)
            with self._lock:
                self._heard.pop(ccid, None)

    def __call__(self, wav: Path) -> list[HeardLine]:
        """The messages the engine makes of one recording heard on a call of its own."""
        with self.call() as hear:
            return hear(wav)


def every_say(hearing: LocalHearing, recordings: Sequence[Path]) -> CallHearing:
    """Every recording of a call heard in turn on the call's one stream (what a kept hearing holds)."""
    with hearing.call() as hear:
        return [hear(recording) for recording in recordings]
