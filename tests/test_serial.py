"""Commands of one call go out in order; different calls do not wait for each other."""

from __future__ import annotations

import threading
import time

from lifeline.ivr.serial import KeyedSerialExecutor


def test_same_key_runs_in_submission_order_one_at_a_time() -> None:
    executor = KeyedSerialExecutor(8, "test")
    seen: list[int] = []
    running = 0
    overlap = False
    lock = threading.Lock()

    def work(n: int) -> None:
        nonlocal running, overlap
        with lock:
            running += 1
            overlap = overlap or running > 1
        time.sleep(0.001)
        with lock:
            seen.append(n)
            running -= 1

    for n in range(50):
        executor.submit("call-1", lambda n=n: work(n))
    assert executor.wait_idle(5)
    executor.shutdown()
    assert seen == list(range(50)) and not overlap


def test_a_blocked_key_does_not_hold_up_another() -> None:
    executor = KeyedSerialExecutor(4, "test")
    release = threading.Event()
    done = threading.Event()
    executor.submit("slow-call", lambda: release.wait(5))
    executor.submit("other-call", done.set)
    assert done.wait(5)
    release.set()
    assert executor.wait_idle(5)
    executor.shutdown()


def test_a_failing_item_does_not_stop_the_queue() -> None:
    executor = KeyedSerialExecutor(2, "test")
    after = threading.Event()

    def boom() -> None:
        raise RuntimeError("broken")

    executor.submit("call", boom)
    executor.submit("call", after.set)
    assert after.wait(5)
    executor.shutdown()
