"""Durable call state: calls, webhook events, claims, transfers, the command outbox, messages."""

from .base import CallStore, StoreTx
from .records import (
                      CallRecord,
                      CallStatus,
                      Command,
                      CommandStatus,
                      FeedEvent,
                      Message,
                      OutboxEntry,
                      TransferRecord,
                      TransferStatus,
)
from .sql import SqlStore

__all__ = ["CallRecord", "CallStatus", "CallStore", "Command", "CommandStatus", "FeedEvent", "Message",
           "OutboxEntry", "SqlStore", "StoreTx", "TransferRecord", "TransferStatus"]
