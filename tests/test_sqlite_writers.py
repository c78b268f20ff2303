"""SQLite under several processes: writers queue on a file lock, readers never wait for writers."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from lifeline.ivr.store import CallRecord, CallStatus
from lifeline.ivr.store.sql import SqlStore, WriterLock, sqlite_file


def _call(call_control_id: str) -> CallRecord:
    return CallRecord(call_control_id=call_control_id, call_session_id="s", call_leg_id="l",
                      from_number="+15550100000", to_number="+15550109999", status=CallStatus.ANSWERING,
                      created_at=1.0, updated_at=1.0)


@pytest.fixture
def two_stores(tmp_path: Path) -> Iterator[tuple[SqlStore, SqlStore]]:
    """Two stores on one database file, as two gunicorn workers have."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = SqlStore(url), SqlStore(url, create_schema=False)
    yield first, second
    first.close()
    second.close()


def test_a_second_writer_on_the_same_file_waits_for_the_first_to_release(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    holder, waiter = WriterLock(path), WriterLock(path)
    holder.acquire()
    _waits_until_released(waiter, holder.release)


def _waits_until_released(lock: WriterLock, release: Callable[[], None]) -> None:
    """`lock` cannot be taken (on another thread) until `release` runs, and then it can."""
    got_it = threading.Event()

    def take() -> None:
        lock.acquire()
        got_it.set()
        lock.release()

    thread = threading.Thread(target=take)
    thread.start()
    assert not got_it.wait(0.3), "a second writer got in while the first held the lock"
    release()
    thread.join(10)
    assert got_it.is_set()


def _hold_and_report(path: str, holding: multiprocessing.synchronize.Event,
                     release: multiprocessing.synchronize.Event) -> None:
    lock = WriterLock(path)
    lock.acquire()
    holding.set()
    release.wait(30)
    lock.release()


def test_the_writer_lock_excludes_another_process(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    context = multiprocessing.get_context("fork")  # as gunicorn makes its workers
    holding, release = context.Event(), context.Event()
    mine = WriterLock(path)
    mine.acquire()
    mine.release()  # opened in this process before the fork: the child must not share that file
    child = context.Process(target=_hold_and_report, args=(path, holding, release))
    child.start()
    try:
        assert holding.wait(30)
        _waits_until_released(mine, release.set)
    finally:
        release.set()
        child.join(10)


def test_a_write_waits_for_another_stores_transaction_then_commits(
        two_stores: tuple[SqlStore, SqlStore]) -> None:
    first, second = two_stores
    order: list[str] = []
    second_done = threading.Event()

    def second_writes() -> None:
        with second.unit() as tx:
            order.append("second begins")
            tx.insert_call(_call("v3:b"))
        second_done.set()

    with first.unit() as tx:
        tx.insert_call(_call("v3:a"))
        thread = threading.Thread(target=second_writes)
        thread.start()
        assert not second_done.wait(0.3)
        order.append("first commits")
    thread.join(30)
    assert order == ["first commits", "second begins"]
    assert first.get_call("v3:a") is not None and first.get_call("v3:b") is not None


def test_reads_do_not_wait_for_an_open_write_and_see_only_committed_rows(
        two_stores: tuple[SqlStore, SqlStore]) -> None:
    first, second = two_stores
    with first.unit() as tx:
        tx.insert_call(_call("v3:committed"))
    with first.unit() as tx:
        tx.insert_call(_call("v3:uncommitted"))
        # Before, every read began with BEGIN IMMEDIATE and so waited for this transaction.
        assert second.get_call("v3:committed") is not None
        assert second.get_call("v3:uncommitted") is None
        with second.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM calls")).scalar() == 1
    assert second.get_call("v3:uncommitted") is not None


def test_an_in_memory_database_has_no_lock_file() -> None:
    assert sqlite_file("sqlite://") is None
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("sqlite:////tmp/x/lifeline.db") == "/tmp/x/lifeline.db"
