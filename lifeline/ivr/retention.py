"""Retention: calls that ended more than LIFELINE_RETENTION_DAYS ago are deleted, whole.

The store removes a call's rows a batch at a time (`OutputStore.purge_ended`: every table that
names the call or its agent legs), holding any call with a command, a webhook or a summary email
still owed, and notes the calls' recordings (`purged_files`) in the same transaction; once it has
committed, the recordings are removed from their sink and forgotten. One that cannot be removed
is logged and stays noted, so the next purge (of any process) tries it again: a sink that refuses
never stops the purge, and never brings rows back. The monitor runs the purge every RUN_EVERY_S;
`flask retention purge` runs it at once.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from .metrics import Metrics
from .recording_sinks import RecordingSink, SinkError
from .store import OutputStore

log = logging.getLogger(__name__)
DAY_S = 86400.0
RUN_EVERY_S = 3600.0
# Calls per unit of work: on SQLite a webhook waits behind one batch at most. A batch of 100 calls
# with rows in every table (26 each) took 30 ms at the median on SQLite and 184 ms on PostgreSQL,
# on a shared 2-core machine (BENCHMARKS.md, "Retention purge").
BATCH = 100
# Between batches, so that writers queued behind the purge (SQLite's one write lock) go first.
PAUSE_S = 0.02


@dataclass
class PurgeReport:
    """What one purge removed (or, in a dry run, would remove), so far or in all."""

    cutoff: float
    dry_run: bool = False
    rows: Counter[str] = field(default_factory=Counter)  # by kind (lifeline.ivr.store.PURGE_KINDS)
    recordings: int = 0  # recordings removed from their sink (in a dry run: that would be)
    recordings_failed: int = 0  # left in place, tried again at the next purge
    held: int = 0  # ended before the cutoff, kept while something of theirs is still owed
    batches: int = 0

    @property
    def calls(self) -> int:
        """How many calls went (or would go)."""
        return self.rows["calls"]


class Retention:
    """Deletes what belongs to calls that ended before a cutoff, and their recordings after commit."""

    def __init__(self, store: OutputStore, sink: RecordingSink, days: float | None,
                 receivers: Collection[str] = (), metrics: Metrics | None = None, batch: int = BATCH,
                 pause_s: float = PAUSE_S, sleep: Callable[[float], None] = time.sleep) -> None:
        self.days = days  # None: keep everything (LIFELINE_RETENTION_DAYS unset)
        self._store = store
        self._sink = sink
        self._receivers = tuple(receivers)  # LIFELINE_EVENT_WEBHOOKS: what is not yet queued is owed
        self._metrics = metrics
        self._batch = batch
        self._pause_s = pause_s
        self._sleep = sleep

    def run(self) -> PurgeReport | None:
        """The monitor's job: purge past LIFELINE_RETENTION_DAYS, or do nothing when it is unset."""
        if self.days is None:
            return None
        report = self.purge(self.days)
        if report.calls or report.rows or report.recordings or report.recordings_failed:
            log.info("retention: removed %s", describe(report))
        return report

    def purge(self, older_than_days: float, dry_run: bool = False, now: float | None = None,
              progress: Callable[[PurgeReport], None] | None = None) -> PurgeReport:
        """Purge every call that ended more than `older_than_days` ago, a batch at a time; `progress`
        is told after each batch. A store outage is a StoreError, raised as it comes."""
        report = PurgeReport(cutoff=(time.time() if now is None else now) - older_than_days * DAY_S,
                             dry_run=dry_run)
        if not dry_run:
            self._remove_recordings(self._store.purged_files(), report)  # left by an earlier purge
        after: tuple[float, str] | None = None
        while True:
            batch = self._store.purge_ended(report.cutoff, self._batch, after, self._receivers, dry_run)
            report.batches += 1
            report.rows.update(batch.rows)
            report.held += batch.held
            if dry_run:
                report.recordings += len(batch.recordings)
            else:
                self._count(batch.rows)
                self._remove_recordings(batch.recordings, report)  # the batch has committed
            if progress is not None:
                progress(report)
            # Past the last call, a purge goes on while batches of strays (events naming no call)
            # go; a dry run counted them all at once.
            if batch.last is None and (dry_run or not batch.rows):
                return report
            after = batch.last or after
            if self._pause_s:
                self._sleep(self._pause_s)

    def _remove_recordings(self, locations: Collection[str], report: PurgeReport) -> None:
        """Remove recordings whose rows are gone, then forget them; one that fails stays noted."""
        removed = []
        for location in locations:
            try:
                self._sink.delete(location)
            except SinkError as exc:
                log.warning("retention: recording %s stays for now (its call's rows are gone): %s; "
                            "tried again at the next purge", location, exc)
                report.recordings_failed += 1
                if self._metrics is not None:
                    self._metrics.recording_not_purged()
                continue
            removed.append(location)
        self._store.forget_purged_files(removed)
        report.recordings += len(removed)
        self._count({"recordings": len(removed)})

    def _count(self, rows: dict[str, int]) -> None:
        if self._metrics is not None:
            for kind, n in rows.items():
                self._metrics.purged(kind, n)


def describe(report: PurgeReport) -> str:
    """A purge's figures on one line: calls, rows by kind, recordings, held."""
    rows = ", ".join(f"{n} {kind}" for kind, n in sorted(report.rows.items()) if n and kind != "calls")
    parts = [f"{report.calls} calls" + (f" ({rows})" if rows else ""), f"{report.recordings} recordings"]
    if report.recordings_failed:
        parts.append(f"{report.recordings_failed} recordings left to retry")
    if report.held:
        parts.append(f"{report.held} calls held while something is still owed")
    return "; ".join(parts)
