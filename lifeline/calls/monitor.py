"""The monitor: an APScheduler job that sweeps active calls.

Each sweep resends commands whose sender gave up or died, applies time-based rules, moves on
from transfers that never produced an agent leg, hangs up calls whose goodbye never reported its
end (`caller.hang_up_if_goodbye_overdue`), and closes calls Telnyx no longer knows.
Several sweepers (workers, instances) may run at once: each call is locked by the sweeper that
takes it (SKIP LOCKED on PostgreSQL) and stamped, so a call is swept once per interval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol, TypeVar

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from lifeline.ivr.context import CallContext
from lifeline.ivr.errors import StoreError
from lifeline.ivr.lock_order import lock_caller_of
from lifeline.ivr.outbox import Sender
from lifeline.ivr.retention import RUN_EVERY_S, Retention
from lifeline.ivr.scope import call_scope
from lifeline.ivr.store import (
    CallRecord,
    CallStatus,
    CallStore,
    CommandStatus,
    TransferRecord,
    TransferStatus,
)

from . import agent
from .machine import Machine, Trigger
from .service import CallService
from .services import Services
from .unit import UnitOfWork, internal_event

log = logging.getLogger(__name__)
SchedulerT = TypeVar("SchedulerT", BackgroundScheduler, BlockingScheduler)
# Calls per unit of work. Each unit holds SQLite's one write lock while it sweeps its calls, and
# webhooks wait behind it: 100 calls per unit held them ~100 ms at a time under load (BENCHMARKS.md,
# "Text path at 200 calls"); 10 keeps each wait short for the same total work.
BATCH = 10
STUCK_GRACE_S = 30.0
ASK_PROVIDER = "ask"  # _transfer_stuck: the provider must be asked about the agent's leg first
# Liveness checks towards the provider: at most 4/s per job (sweep, upkeep), 20 per run (a 5 s interval).
STALE_CHECKS_PER_SWEEP = 20
STALE_CHECK_SPACING_S = 0.25


@dataclass
class SweepReport:
    """What one sweep did."""

    resent: int = 0
    swept: int = 0
    escalated: int = 0
    unstuck: int = 0
    closed: int = 0
    polled: int = 0
    recordings: int = 0  # voicemail fetches retried


class LiveCheck(Protocol):
    """Asks the provider whether a call's leg is still up (True, False, or None for "cannot tell")."""

    def is_alive(self, call_control_id: str) -> bool | None:
        """Whether the leg is up; None when the provider could not be asked."""


class Monitor:
    """Sweeps active calls on a schedule (one job per process)."""

    def __init__(self, store: CallStore, sender: Sender, provider: LiveCheck,
                 units: UnitOfWork, services: Services, machine: Machine, interval_s: float,
                 transfer_timeout_s: float, stale_after_s: float, calls: CallService,
                 sleep: Callable[[float], None] = time.sleep, longest_send_s: float = 0.0,
                 retention: Retention | None = None) -> None:
        self._store = store
        self._sender = sender
        self._provider = provider  # the providers' router: it asks whichever owns the call
        self._units = units
        self._services = services
        self.recordings = services.recordings
        self._machine = machine
        self._calls = calls
        self.interval_s = interval_s
        self.resend_after_s = max(10.0, interval_s)
        # A command with no attempt recorded may still be on its way in another process (up to
        # `longest_send_s`): resending it sooner would send it twice.
        self.resend_untried_after_s = max(self.resend_after_s, longest_send_s + 2.0)
        self._stuck_after_s = transfer_timeout_s + STUCK_GRACE_S
        self._stale_after_s = stale_after_s
        self._sleep = sleep
        self._scheduler: BackgroundScheduler | None = None
        self._store_down_since: dict[str, float] = {}  # job name -> when the store first failed it
        # After an outage, calls idle since before it began are asked about at once, not after
        # LIFELINE_STALE_CALL_S: their hangups may have been refused while the store was down.
        self._recheck_idle_before: float | None = None
        self.retention = retention  # the hourly purge (LIFELINE_RETENTION_DAYS); None: not this process's

    def sweep(self, now: float | None = None, upkeep: bool = True) -> SweepReport:
        """Run one sweep over every active call not swept in the last interval; with `upkeep`, the
        upkeep's work too (lost calls, recordings), which the schedule runs as a job of its own."""
        report = SweepReport(resent=self._sender.resend_due(self.resend_after_s, self.resend_untried_after_s))
        now = time.time() if now is None else now
        report.polled = self._poll_engine()

        asks: list[TransferRecord] = []

        def sweep_batch(ctx: CallContext) -> int:
            calls = ctx.tx.calls_to_sweep(now - self.interval_s * 0.9, BATCH)
            for call in calls:
                with call_scope(call.call_control_id, started=time.monotonic()):
                    self._sweep_call(ctx, call, now, report, asks)
            # One statement for the batch; a sweep is not activity, so updated_at stays.
            ctx.tx.stamp_swept([call.call_control_id for call in calls], now)
            return len(calls)

        while True:
            # One unit of work per batch; command ids include the call, so calls cannot collide.
            swept = self._units.run(internal_event("lifeline.sweep", None), sweep_batch)
            report.swept += swept
            if swept < BATCH:
                break
        # Ringing legs past their timeout: a caller waits on those, so they are asked here.
        asked = self._settle_ringing(asks, report, STALE_CHECKS_PER_SWEEP)
        if upkeep:
            if asked:
                self._sleep(STALE_CHECK_SPACING_S)  # the lost-call checks keep the same spacing after these
            self.upkeep(now, report)
        return report

    def upkeep(self, now: float | None = None, report: SweepReport | None = None) -> SweepReport:
        """Close calls long silent that the provider says are over, and retry voicemail fetches.

        No caller waits on either, and each can take a provider's timeout many times over (20
        questions of up to LIFELINE_COMMAND_TIMEOUT, recordings' downloads): the schedule runs this
        as its own job, so a slow provider never delays the sweep's transfers, goodbyes and resends."""
        now = time.time() if now is None else now
        report = SweepReport() if report is None else report
        report.closed = self._close_lost_calls(now, STALE_CHECKS_PER_SWEEP)
        if self.recordings is not None:
            report.recordings = self.recordings.retry_failed(now)
        return report

    def _sweep_call(self, ctx: CallContext, call: CallRecord, now: float, report: SweepReport,
                    asks: list[TransferRecord]) -> None:
        transfers = ctx.tx.transfers(call.call_control_id)
        if self._machine.allows(call.status, Trigger.TICK):
            was = call.status
            self._machine.fire(ctx, self._services, call, Trigger.TICK, now=now)
            if was == CallStatus.TRANSFERRING:
                # Moved on from a cancelled attempt the caller's hangup never followed: to the next
                # agent (a new attempt) or to the apology menu. Only such a call is read again.
                lingering = bool(transfers) and transfers[-1].status == TransferStatus.CANCELLED
                if lingering and (call.status != was
                                  or len(ctx.tx.transfers(call.call_control_id)) > len(transfers)):
                    report.unstuck += 1
            elif call.status == CallStatus.TRANSFERRING:
                report.escalated += 1  # a time-based rule put the caller through
        for transfer in transfers:
            cause = self._transfer_stuck(ctx, transfer, now)
            if cause == ASK_PROVIDER:
                asks.append(transfer)
            elif cause is not None:
                agent.failed(ctx, self._services, self._machine, transfer, cause)
                report.unstuck += 1

    def _transfer_stuck(self, ctx: CallContext, transfer: TransferRecord, now: float) -> str | None:
        """Why an open transfer attempt must be given up now (its cause), or None to keep waiting."""
        if transfer.status not in (TransferStatus.REQUESTED, TransferStatus.RINGING):
            return None
        since = transfer.updated_at
        entry = (ctx.tx.outbox_entry(transfer.command_id) if transfer.status == TransferStatus.REQUESTED
                 else None)
        if entry is not None:
            if entry.status == CommandStatus.PENDING:
                # Not with the provider yet: the sweep resends this very command. Moving on while it
                # may still be taken would leave two transfers on their way, so that waits for twice
                # the stuck time; then the attempt is closed (its transfer is no longer resent, and
                # a leg it makes after all is hung up on arrival) and the caller moves on.
                if now - transfer.requested_at <= 2 * self._stuck_after_s:
                    return None
                log.warning("transfer %s attempt %d was never taken in %.0f s (%s); moving on",
                            transfer.call_control_id, transfer.attempt, now - transfer.requested_at,
                            entry.last_error or "no answer")
                return "not_taken"
            if entry.status == CommandStatus.REJECTED:
                log.warning("transfer %s attempt %d was refused (%s); moving on", transfer.call_control_id,
                            transfer.attempt, entry.last_error)
                return "transfer_rejected"
            since = max(since, entry.updated_at)  # the agent's ringing timeout starts when it was taken
        if now - since <= self._stuck_after_s:
            return None
        if transfer.status == TransferStatus.RINGING and transfer.agent_call_control_id \
                and now - since <= 2 * self._stuck_after_s:
            # Its leg is known: the provider can say whether it is still up (outside this unit).
            return ASK_PROVIDER
        # The provider never reported an outcome for this agent: do not leave the caller hanging.
        log.warning("transfer %s attempt %d got no outcome in %.0f s; moving on",
                    transfer.call_control_id, transfer.attempt, now - since)
        return "no_outcome"

    def _settle_ringing(self, asks: list[TransferRecord], report: SweepReport, budget: int) -> int:
        """Agent legs ringing past their timeout: still up means the agent answered and the bridge
        was never reported (connect, do not ring the next agent over the conversation); gone means
        move on. Asked outside any unit of work (it is HTTP); a leg the provider cannot tell
        about is asked again next sweep, until twice the stuck time, then moved on from. Asks at most
        `budget` times, spaced as the lost-call checks are; returns how many it asked."""
        for n, transfer in enumerate(asks[:budget]):
            assert transfer.agent_call_control_id is not None
            if n:
                self._sleep(STALE_CHECK_SPACING_S)
            alive = self._provider.is_alive(transfer.agent_call_control_id)
            if alive is None:
                continue

            def settle(ctx: CallContext, transfer: TransferRecord = transfer, alive: bool = alive) -> bool:
                caller, current = lock_caller_of(ctx.tx, transfer)
                if caller is None or current is None or current.status != TransferStatus.RINGING:
                    return False  # an outcome arrived meanwhile
                if alive:
                    log.warning("transfer %s attempt %d: the agent's leg is up past its ringing "
                                "timeout, so it was answered; the bridge was never reported",
                                transfer.call_control_id, transfer.attempt)
                    self._machine.fire(ctx, self._services, caller, Trigger.BRIDGED, transfer=current)
                else:
                    log.warning("transfer %s attempt %d: the agent's leg is gone without an outcome; "
                                "moving on", transfer.call_control_id, transfer.attempt)
                    agent.failed(ctx, self._services, self._machine, current, "no_outcome")
                return True
            if self._units.run(internal_event("lifeline.sweep", transfer.call_control_id), settle):
                report.unstuck += 1
        return min(len(asks), budget)

    def _poll_engine(self) -> int:
        """Fetch messages for engines that poll (outside any transaction: it is HTTP)."""
        engine = self._services.engine
        if not engine.polls:
            return 0
        fetched = 0
        for call in self._store.list_calls(limit=500, active_only=True):
            for message in engine.poll(call.call_control_id):
                # Repeats are dropped by the store (unique per call and message id).
                self._calls.hear(call.call_control_id, engine.name, message.source_id, message.text,
                                 message.confidence, message.score)
                fetched += 1
        return fetched

    def _close_lost_calls(self, now: float, budget: int = STALE_CHECKS_PER_SWEEP) -> int:
        """Close calls that have been silent for long and that Telnyx says are over.

        Every active call is covered, oldest check first, and each is asked about once per
        stale period across all sweepers: the sweeper stamps `checked_at` on the rows it takes
        (locked, SKIP LOCKED on PostgreSQL) before it asks. Towards Telnyx each sweeper asks at
        most STALE_CHECKS_PER_SWEEP times per sweep, STALE_CHECK_SPACING_S apart.
        """
        idle_before = now - self._stale_after_s
        recheck = self._recheck_idle_before
        if recheck is not None:
            idle_before = max(idle_before, recheck)
        with self._store.unit() as tx:
            idle = tx.calls_to_check(idle_before, budget) if budget > 0 else []
            for call in idle:
                tx.update_call(call.call_control_id, checked_at=now, updated_at=call.updated_at)
        if recheck is not None and len(idle) < budget:
            self._recheck_idle_before = None  # every call of the outage has been asked about
        closed = 0
        for n, call in enumerate(idle):
            if n:
                self._sleep(STALE_CHECK_SPACING_S)
            if self._provider.is_alive(call.call_control_id) is not False:
                continue
            if self._calls.call_gone(call.call_control_id, "lost", unchanged_since=call.updated_at):
                closed += 1
        return closed

    @property
    def running(self) -> bool:
        """Whether this process's background sweeps are scheduled."""
        return self._scheduler is not None

    def start(self) -> None:
        """Run the sweep every interval in a background thread of this process."""
        if self._scheduler is not None:
            return
        self._scheduler = self._schedule(BackgroundScheduler(daemon=True))
        self._scheduler.start()

    def run_forever(self) -> None:
        """Run the sweep every interval in the foreground (`flask monitor`)."""
        self._schedule(BlockingScheduler()).start()

    def _schedule(self, scheduler: SchedulerT) -> SchedulerT:
        # One sweep at a time per process; a late tick is merged, not queued behind the next. The
        # upkeep is a job of its own, so its slow questions never hold a sweep back.
        scheduler.add_job(self._safe, "interval", args=(partial(self.sweep, upkeep=False), "sweep"),
                          seconds=self.interval_s, id="lifeline-sweep", max_instances=1, coalesce=True)
        scheduler.add_job(self._safe, "interval", args=(self.upkeep, "upkeep"),
                          seconds=self.interval_s, id="lifeline-upkeep", max_instances=1, coalesce=True)
        if self.retention is not None and self.retention.days is not None:
            # Its own job: a first purge of a long history must never hold a sweep back.
            scheduler.add_job(self._safe, "interval", args=(self.retention.run, "retention"),
                              seconds=RUN_EVERY_S, id="lifeline-retention", max_instances=1, coalesce=True)
        return scheduler

    def _safe(self, job: Callable[[], object], name: str) -> None:
        try:
            report = job()
        except StoreError as exc:
            # The database is down: one line when it starts and one when it ends, not a traceback
            # every tick from every worker. (Any other database error is a bug, and says so.)
            if name not in self._store_down_since:
                self._store_down_since[name] = time.monotonic()
                log.error("monitor %s paused: the call store is unavailable (%s: %s); check that the "
                          "database at DATABASE_URL is up. Retrying every %.0f s", name,
                          exc.__class__.__name__, " ".join(str(exc).split())[:200], self.interval_s)
            return
        except Exception:  # the next tick tries again; one bad run must not stop the schedule
            log.exception("%s failed", name)
            return
        down_since = self._store_down_since.pop(name, None)
        if down_since is not None:
            lasted = time.monotonic() - down_since
            log.warning("monitor %s resumed after %.0f s; calls idle since before the outage are "
                        "checked with the provider now", name, lasted)
            self._recheck_idle_before = time.time() - lasted
        if isinstance(report, SweepReport) and (report.resent or report.escalated or report.unstuck
                                                or report.closed):
            log.info("%s: %s", name, report)

    def stop(self) -> None:
        """Stop the background schedule."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
