"""Durable call state: calls, webhook events, claims, transfers, the command outbox, messages."""

from .base import CallStore, StoreTx
from .records import (
                      CallRecord,
                      CallStatus,
                      Command,
                      CommandStatus,
                      Message,
                      OutboxEntry,
                      TransferRecord,
                      TransferStatus,
)
from .sql import SqlStore

__all__ = ["CallRecord", "CallStatus", "CallStore", "Command", "CommandStatus", "Message", "OutboxEntry",
           "SqlStore", "StoreTx", "TransferRecord", "TransferStatus"]
