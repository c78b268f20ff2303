"""Durable call state: calls, webhook events, claims, transfers, the command outbox, messages.

The records and the interface load nothing heavy; the backends are imported from their own
modules (`ivr.store.sql`, `ivr.store.memory`) by whoever builds one.
"""

from .base import CallStore, StoreTx
from .records import (
    OUTCOMES,
    CallPage,
    CallQuery,
    CallRecord,
    CallStatus,
    Command,
    CommandStatus,
    FeedEvent,
    Message,
    OutboxEntry,
    StoreFigures,
    TransferRecord,
    TransferStatus,
)

__all__ = ["OUTCOMES", "CallPage", "CallQuery", "CallRecord", "CallStatus", "CallStore", "Command", "CommandStatus",
           "FeedEvent", "Message", "OutboxEntry", "StoreFigures", "StoreTx", "TransferRecord", "TransferStatus"]
