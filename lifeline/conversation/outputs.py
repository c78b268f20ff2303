"""The outputs of one app instance, built once by the composition root."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from lifeline.calls.services import Services
from lifeline.calls.unit import UnitOfWork
from lifeline.ivr.errors import StoreError
from lifeline.ivr.store import OutputStore
from lifeline.ivr.telnyx_api import TelnyxCommands

from .dialout import DialOut
from .hub import FeedHub, StoreListener, StorePoller
from .pause import ListeningControl
from .settings import OutputSettings
from .summaries import Summaries
from .webhooks_out import WebhookDelivery
from .worker import OutputsWorker

log = logging.getLogger(__name__)

# SQLite has no notifications: one `max(id)` query per process this often wakes its clients.
POLL_S = 0.05


def feed_listener(store: OutputStore, hub: FeedHub) -> StoreListener | StorePoller | None:
    """What wakes this process's feed readers for other processes' events, as the store's backend says."""
    # PostgreSQL notifies each commit to the feed, SQLite is polled, and a store only this process
    # uses (memory) needs neither: its own writes wake the hub (UnitOfWork's on_published).
    notices = store.feed_notices()
    if notices.listen:
        return StoreListener(store.listen_feed, hub)
    if notices.poll:
        return StorePoller(store.feed_last_id, hub, POLL_S)
    return None


@dataclass
class Outputs:
    """Feed, wake-ups, pause, summaries, webhooks, dial-out and the worker (extensions["conversation"])."""

    settings: OutputSettings
    store: OutputStore
    hub: FeedHub
    control: ListeningControl
    summaries: Summaries
    webhooks: WebhookDelivery
    worker: OutputsWorker
    dialout: DialOut
    listener: StoreListener | StorePoller | None = field(default=None)

    @classmethod
    def build(cls, settings: OutputSettings, store: OutputStore, hub: FeedHub, units: UnitOfWork,
              services: Services, telnyx: TelnyxCommands | None) -> Outputs:
        """Wire the outputs over one store; nothing starts until start() or a feed client.

        Without Telnyx (`telnyx` None) dial-out answers that it needs Telnyx."""
        summaries = Summaries(store, settings)
        webhooks = WebhookDelivery(store, settings)
        return cls(settings=settings, store=store, hub=hub,
                   control=ListeningControl(units, services), summaries=summaries, webhooks=webhooks,
                   worker=OutputsWorker(hub, summaries, webhooks, settings),
                   dialout=DialOut(telnyx, units, settings.dial_from, services.engine,
                                   allow=settings.dial_allow),
                   listener=feed_listener(store, hub))

    def subscribed(self) -> None:
        """A feed client arrived: hear other processes' events from now on (NOTIFY, or the poller)."""
        if self.listener is not None:
            self.listener.start()

    def start(self) -> None:
        """Start the background worker (and the cross-instance listener)."""
        self.subscribed()
        if self.webhooks.enabled:
            # A new receiver's cursor starts at the feed's end: set it now, not on the worker's
            # first round, or a call that starts before that round would lose its first events.
            try:
                self.webhooks.materialise()
            except StoreError as exc:
                log.warning("webhooks out: receivers' cursors not set yet (%s); the worker retries", exc)
        self.worker.start()

    def close(self) -> None:
        """Stop the worker and the listener; release HTTP clients."""
        self.worker.stop()
        if self.listener is not None:
            self.listener.stop()
        self.webhooks.close()
