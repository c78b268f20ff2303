"""Reading the feed: events after an id, one call's events, and the JSON shape they go out in."""

from __future__ import annotations

from collections.abc import Sequence

from ivr.store import OutputStore, StoredEvent

KINDS = ("call.started", "message", "decision", "transfer", "listening", "call.ended", "summary.ready")


class Feed:
    """Reads of the feed, in the store the outputs were given."""

    def __init__(self, store: OutputStore) -> None:
        self._store = store

    def after(self, after_id: int, call_control_id: str | None = None, limit: int = 200) -> list[StoredEvent]:
        """Events with an id above after_id (of one call, or all), oldest first."""
        return self._store.feed_after(after_id, call_control_id, limit)

    def after_kind(self, after_id: int, kind: str, limit: int = 100) -> list[StoredEvent]:
        """Events of one kind with an id above after_id, oldest first."""
        return self._store.feed_after_kind(after_id, kind, limit)

    def by_ids(self, ids: Sequence[int]) -> list[StoredEvent]:
        """The events with these ids, oldest first."""
        return self._store.feed_by_ids(ids)

    def for_call(self, call_control_id: str, kinds: Sequence[str] | None = None) -> list[StoredEvent]:
        """Every event of one call (optionally of some kinds), oldest first."""
        return self._store.feed_for_call(call_control_id, kinds)

    def last_id(self) -> int:
        """The newest event's id (0 when the feed is empty)."""
        return self._store.feed_last_id()


__all__ = ["KINDS", "Feed", "StoredEvent"]
