"""How long the console's history search takes on a store of many calls.

`python -m lifeline.simulator.history_bench --calls 10000 [--postgres postgresql://…/db]` fills a fresh
store (a temporary SQLite file, or a throw-away schema on PostgreSQL) with calls, three caller
messages each and a decision on one in five, then times each kind of search the history page
makes. Bounded: the store is built once and every query runs `--repeat` times.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from lifeline.ivr.store import CallQuery, CallRecord, CallStatus
from lifeline.ivr.store.sql import SqlStore

_WORDS = ("balance card bill charge refund mortgage account payment address branch transfer loan "
          "statement savings fee interest cheque pin overdraft limit").split()
_OUTCOMES = ("completed", "transferred", "voicemail", "abandoned")
_RULES = ("caller_intent", "negative_streak", "dtmf_0", "annoyed_twice")


def fill(store: SqlStore, calls: int, seed: int = 7) -> float:
    """Add `calls` ended calls spread over 30 days; returns the first call's start time."""
    rng = random.Random(seed)
    start = time.time() - 30 * 86400
    for first in range(0, calls, 500):
        with store.unit() as tx:
            for i in range(first, min(first + 500, calls)):
                ccid = f"v3:bench-{i:07d}"
                at = start + i * (30 * 86400 / calls)
                tx.insert_call(CallRecord(call_control_id=ccid, call_session_id=None, call_leg_id=None,
                                          from_number=f"+1555{rng.randrange(10**7):07d}",
                                          to_number="+15550100000",
                                          status=CallStatus.ENDED, created_at=at, updated_at=at + 90,
                                          outcome=rng.choice(_OUTCOMES), ended_at=at + 90))
                for m in range(3):
                    text = " ".join(rng.choice(_WORDS) for _ in range(8))
                    tx.add_message(ccid, "telnyx", f"m{m}", text, 0.9, rng.uniform(-1, 1), None)
                if i % 5 == 0:
                    tx.add_decision(ccid, rng.choice(_RULES), "bench", [])
    return start


def timed(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and worst wall time of `action` in milliseconds."""
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples), max(samples)


def run(store: SqlStore, calls: int, repeat: int) -> None:
    """Fill the store and print one line per kind of search."""
    began = time.perf_counter()
    start = fill(store, calls)
    print(f"{store.engine.dialect.name}: {calls} calls, {3 * calls} messages stored in "
          f"{time.perf_counter() - began:.1f} s")
    queries = {
        "newest page (no filter)": CallQuery(),
        "page 40 (offset 975)": CallQuery(offset=975),
        "outcome + rule": CallQuery(outcome="transferred", rule="negative_streak"),
        "one day": CallQuery(since=start + 10 * 86400, until=start + 11 * 86400),
        "text 'refund'": CallQuery(text="refund"),
        "text, no match": CallQuery(text="nothing like this"),
        "text + outcome + day": CallQuery(text="mortgage", outcome="completed",
                                          since=start + 10 * 86400, until=start + 11 * 86400),
    }
    for name, query in queries.items():
        median, worst = timed(lambda q=query: store.search_calls(q), repeat)  # type: ignore[misc]
        print(f"  {name:<26} median {median:7.1f} ms   max {worst:7.1f} ms")


def main() -> None:
    """Parse the arguments and run on SQLite, or on PostgreSQL when a URL is given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--postgres", help="a PostgreSQL URL: the bench makes and drops its own schema")
    args = parser.parse_args()
    if args.postgres:
        import psycopg

        schema = f"lifeline_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        store = SqlStore(args.postgres.replace("postgresql://", "postgresql+psycopg://", 1),
                         schema_name=schema)
        try:
            run(store, args.calls, args.repeat)
        finally:
            store.close()
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        return
    with tempfile.TemporaryDirectory(prefix="lifeline-history-bench-") as folder:
        store = SqlStore(f"sqlite:///{Path(folder) / 'bench.db'}")
        try:
            run(store, args.calls, args.repeat)
        finally:
            store.close()


if __name__ == "__main__":
    main()
