"""How long a menu and a transfer wait behind a command Telnyx is slow to reply to.

`python -m lifeline.simulator.hol_probe`: five calls against the app in process, with production's 5 s
command timeout. For each, Telnyx carries out the `answer` at once but replies 6 s later (so
the app's attempt times out and is retried), then does the same to the handoff `speak` after
the caller presses 0. Prints the median and the longest wait of the menu after the call came
in, and of the transfer after the key (BENCHMARKS.md, issue 10 item 5).
"""

from __future__ import annotations

import statistics
import time

from .emulator import Emulator, Fault
from .legs import Leg
from .runner import Simulation

CALLS = 5
REPLY_LATE_S = 6.0


def _wait_transfer(leg: Leg, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not leg.log.transfers and time.monotonic() < deadline:
        time.sleep(0.005)


def probe(emulator: Emulator, calls: int) -> tuple[list[float], list[float]]:
    """The menu's and the transfer's waits, in seconds, one of each per call."""
    menus: list[float] = []
    transfers: list[float] = []
    for index in range(calls):
        emulator.inject(Fault("answer", delay_s=REPLY_LATE_S))
        leg = emulator.incoming_call(from_=f"+1555123{index:04d}")
        started = time.monotonic()
        if not emulator.wait_for_gather(leg, 30):
            raise RuntimeError("no menu within 30 s")
        menus.append(time.monotonic() - started)
        emulator.inject(Fault("speak", delay_s=REPLY_LATE_S))
        started = time.monotonic()
        emulator.press(leg, "0")
        _wait_transfer(leg, 30)
        transfers.append(time.monotonic() - started)
        emulator.caller_hangs_up(leg)
    return menus, transfers


def main() -> None:
    """Run the probe and print what it found."""
    config = {"LIFELINE_AGENTS": "+15550001111,+15550002222", "LIFELINE_COMMAND_TIMEOUT": "5"}
    with Simulation(config, speed=20) as sim:
        menus, transfers = probe(sim.emulator, CALLS)
        time.sleep(REPLY_LATE_S + 1)  # let the late replies land before the servers stop
    print(f"menu after the call came in: median {statistics.median(menus):.2f} s, max {max(menus):.2f} s")
    print(f"transfer after key 0: median {statistics.median(transfers):.2f} s, max {max(transfers):.2f} s")


if __name__ == "__main__":
    main()
