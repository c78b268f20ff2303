"""Durable call state: calls, webhook events, claims, transfers, the command outbox, messages;
and the conversation outputs' (feed reads, summaries, webhook deliveries).

The records and the interfaces load no database driver; the backends are imported from their own
modules (`lifeline.ivr.store.sql`, `lifeline.ivr.store.memory`) when `open_store` picks one.
"""

from ..config import MEMORY_URL
from .base import CallStore, StoreTx
from .opening import open_store
from .outputs import (
    Delivery,
    DeliveryAttempt,
    DeliveryOutcome,
    DeliveryStatus,
    EmailStatus,
    FeedNotices,
    OutputStore,
    StoredEvent,
    Summary,
)
from .records import (
    OUTCOMES,
    PURGE_KINDS,
    CallPage,
    CallQuery,
    CallRecord,
    CallStatus,
    Command,
    CommandStatus,
    FeedEvent,
    Message,
    OutboxEntry,
    PurgeBatch,
    StoreFigures,
    TransferRecord,
    TransferStatus,
)

__all__ = ["MEMORY_URL", "OUTCOMES", "PURGE_KINDS", "CallPage", "CallQuery", "CallRecord", "CallStatus",
           "CallStore", "Command", "CommandStatus", "Delivery", "DeliveryAttempt", "DeliveryOutcome",
           "DeliveryStatus", "EmailStatus", "FeedEvent", "FeedNotices", "Message", "OutboxEntry",
           "OutputStore", "PurgeBatch", "StoreFigures", "StoreTx", "StoredEvent", "Summary",
           "TransferRecord", "TransferStatus", "open_store"]
