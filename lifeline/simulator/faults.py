"""Faults a test arms on purpose, and chaos: Telnyx on a bad day, seeded and reproducible."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


@dataclass
class Fault:
    """Make the next `times` matching commands fail, answer late, or wait for a signal: `hold`
    before Telnyx acts (the command is stuck), `reply_hold` after it acted (only the answer is)."""

    command: str
    times: int = 1
    status: int | None = None
    code: str = "10007"
    delay_s: float = 0.0
    hold: threading.Event | None = None
    reply_hold: threading.Event | None = None
    drop: bool = False  # answer 200 but do nothing, as if the command were lost inside Telnyx


@dataclass
class Chaos:
    """Misbehave like a bad day at Telnyx, each with probability `rate` (seeded, reproducible)."""

    rate: float
    seed: int = 7
    timeout_s: float = 1.5  # longer than the app's command timeout in chaos runs

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def happens(self, share: float = 1.0) -> bool:
        """Roll the dice for one misbehaviour."""
        with self._lock:
            return self._random.random() < self.rate * share

    def delay(self) -> float:
        """How late a delayed webhook arrives."""
        with self._lock:
            return self._random.uniform(0.05, 0.4)


class Faults:
    """The armed faults, plus chaos's random ones, consulted once per command."""

    def __init__(self, chaos: Chaos | None) -> None:
        self.chaos = chaos
        self._armed: list[Fault] = []
        self._lock = threading.Lock()

    def arm(self, fault: Fault) -> None:
        """Arm a fault for the next matching command(s)."""
        with self._lock:
            self._armed.append(fault)

    def next_for(self, name: str) -> Fault | None:
        """The fault the next `name` command meets, if any: an armed one first, then chaos."""
        with self._lock:
            for fault in self._armed:
                if fault.command == name and fault.times > 0:
                    fault.times -= 1
                    return fault
        if self.chaos is None:
            return None
        if self.chaos.happens(0.5):
            return Fault(name, status=500, code="10007")
        if self.chaos.happens(0.25):
            return Fault(name, delay_s=self.chaos.timeout_s)
        return None
