"""Tables of the call store (SQLAlchemy Core; the same schema on SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

calls = Table(
    "calls", metadata,
    Column("call_control_id", String(255), primary_key=True),
    Column("call_session_id", String(255), index=True),
    Column("call_leg_id", String(255)),
    Column("from_number", String(255)),
    Column("to_number", String(255)),
    Column("status", String(32), nullable=False, index=True),
    Column("menu", String(64)),
    Column("retries", Integer, nullable=False, default=0),
    Column("pending", String(32)),
    Column("outcome", String(32)),
    Column("hangup_cause", String(64)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("answered_at", Float),
    Column("ended_at", Float),
    Column("swept_at", Float),
    Column("checked_at", Float),
    Column("listening", String(16)),
    Column("listening_reason", String(200)),
    Column("recording_url", String(1000)),
    Column("recording_status", String(16)),
    Column("recording_saved_at", Float),
    Column("recording_path", String(1000)),
    Column("recording_sha256", String(64)),
    Column("recording_duration_s", Float),
    Column("recording_attempts", Integer, nullable=False, default=0),
    Column("recording_attempted_at", Float),
    Column("recording_error", String(500)),
    Column("engine_state", Text),
)

# The monitor's recording retry (lifeline/ivr/recordings.py): pending or failed fetches, oldest first.
Index("ix_calls_recording_due", calls.c.recording_status, calls.c.recording_saved_at)
Index("ix_calls_newest", calls.c.created_at, calls.c.call_control_id)  # history, newest first
Index("ix_calls_ended", calls.c.ended_at, calls.c.call_control_id)  # retention, oldest end first

events = Table(
    "webhook_events", metadata,
    Column("id", String(255), primary_key=True),
    Column("event_type", String(100), nullable=False),
    Column("call_control_id", String(255), index=True),
    Column("occurred_at", String(64)),
    Column("received_at", Float, nullable=False),
    Column("attempt", Integer, nullable=False, default=1),
    Column("payload", Text, nullable=False),
)
Index("ix_webhook_events_received", events.c.received_at)  # retention: old events that name no call

# A row here is a won claim: the primary key makes the insert the atomic decision.
claims = Table(
    "claims", metadata,
    Column("call_control_id", String(255), primary_key=True),
    Column("action", String(128), primary_key=True),
    Column("claimed_at", Float, nullable=False),
)

transfers = Table(
    "transfers", metadata,
    Column("call_control_id", String(255), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("to_number", String(255), nullable=False),
    Column("command_id", String(64), nullable=False),
    Column("reason", String(255), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("agent_call_control_id", String(255), index=True),
    Column("hangup_cause", String(64)),
    Column("requested_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

commands = Table(
    "commands", metadata,
    Column("command_id", String(64), primary_key=True),
    Column("call_control_id", String(255), nullable=False, index=True),
    Column("name", String(64), nullable=False),
    Column("params", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", String(500)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("ix_commands_status_updated", commands.c.status, commands.c.updated_at)

messages = Table(
    "messages", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_control_id", String(255), nullable=False, index=True),
    Column("engine", String(16), nullable=False),
    Column("source_id", String(255), nullable=False),
    Column("text", Text, nullable=False),
    Column("confidence", Float),
    Column("score", Float),
    Column("label", String(16)),
    Column("analysis", Text),  # JSON: intents and frustration probabilities (lifeline/insight/understand.py)
    Column("created_at", Float, nullable=False),
)
Index("ux_messages_source", messages.c.call_control_id, messages.c.source_id, unique=True)

decisions = Table(
    "decisions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_control_id", String(255), nullable=False, index=True),
    Column("rule", String(64), nullable=False),
    Column("reason", String(255), nullable=False),
    Column("evidence", Text, nullable=False),
    Column("decided_at", Float, nullable=False),
)

# The conversation, out: every event a call produces, in commit order (the id only grows; on
# PostgreSQL writers take one advisory lock so a smaller id is never committed after a larger one).
feed = Table(
    "feed", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_control_id", String(255), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("data", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)
Index("ix_feed_call_kind", feed.c.call_control_id, feed.c.kind)
Index("ix_feed_kind_id", feed.c.kind, feed.c.id)

# Webhooks out: one row per (event, receiver URL), sent in feed order per call and receiver.
deliveries = Table(
    "deliveries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feed_id", Integer, nullable=False),
    Column("url", String(1000), nullable=False),
    Column("call_control_id", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", Float, nullable=False),
    Column("last_error", String(500)),
    Column("delivered_at", Float),
    Column("created_at", Float, nullable=False),
)
Index("ux_deliveries_feed_url", deliveries.c.feed_id, deliveries.c.url, unique=True)
Index("ix_deliveries_due", deliveries.c.status, deliveries.c.next_at)
Index("ix_deliveries_order", deliveries.c.url, deliveries.c.call_control_id, deliveries.c.feed_id)

delivery_attempts = Table(
    "delivery_attempts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", Integer, nullable=False, index=True),
    Column("at", Float, nullable=False),
    Column("http_status", Integer),
    Column("error", String(500)),
    Column("duration_ms", Float, nullable=False),
)

# How far each receiver URL has been given the feed (rows up to here have deliveries).
delivery_cursors = Table(
    "delivery_cursors", metadata,
    Column("url", String(1000), primary_key=True),
    Column("feed_id", Integer, nullable=False),
)

# Console sessions signed out before their 8 hours were up: a copy of such a cookie opens nothing.
# A row is needed only until the session would have ended anyway, and is pruned after that.
revoked_sessions = Table(
    "revoked_sessions", metadata,
    Column("session_id", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False),
)

# Failed sign-ins and bearer tokens, by client address (lifeline/ivr/throttle.py): an address with enough
# of them inside the window is refused for a while. Rows are pruned once they leave the window.
auth_failures = Table(
    "auth_failures", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client", String(64), nullable=False),
    Column("at", Float, nullable=False, index=True),
)
Index("ix_auth_failures_client_at", auth_failures.c.client, auth_failures.c.at)

summaries = Table(
    "summaries", metadata,
    Column("call_control_id", String(255), primary_key=True),
    Column("body", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("email_to", String(1000)),
    Column("email_status", String(16)),
    Column("email_attempts", Integer, nullable=False, default=0),
    Column("email_next_at", Float),
    Column("email_error", String(500)),
)
Index("ix_summaries_email", summaries.c.email_status, summaries.c.email_next_at)

# What the retention purge removed, counted as /metrics counts it (figure: ended_by_outcome,
# decisions_by_rule, transfers_by_status, rejected_commands): figures() adds these to the rows that
# remain, so its counters never go down when old calls are deleted.
purged_counts = Table(
    "purged_counts", metadata,
    Column("figure", String(32), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("count", Integer, nullable=False),
)

# Recordings of purged calls still to be removed from their sink: written in the unit of work that
# deletes the calls' rows, removed once the file (or bucket object) is gone. A sink that refuses,
# or a process that stops between the two, leaves the row for the next purge to try again.
purged_files = Table(
    "purged_files", metadata,
    Column("location", String(1000), primary_key=True),
    Column("purged_at", Float, nullable=False),
)
