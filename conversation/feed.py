"""Reading the feed: events after an id, one call's events, and the JSON shape they go out in."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, bindparam, func, select

from ivr.store import schema
from ivr.timefmt import iso

KINDS = ("call.started", "message", "decision", "transfer", "listening", "call.ended", "summary.ready")
# The queries every process runs several times a second (the poll, the summaries' look for ended
# calls), built once so that SQLAlchemy finds their compiled form without rebuilding them.
_LAST_ID = select(func.max(schema.feed.c.id))
_AFTER_KIND = (select(schema.feed).where(schema.feed.c.id > bindparam("after_id"), schema.feed.c.kind == bindparam("kind"))
               .order_by(schema.feed.c.id).limit(bindparam("limit")))


@dataclass(frozen=True)
class StoredEvent:
    """One feed row: its id, kind, call, time and data."""

    id: int
    kind: str
    call_control_id: str
    created_at: float
    data: dict[str, Any]

    def envelope(self) -> dict[str, Any]:
        """The JSON every output sends: SSE data, webhook body, NDJSON line."""
        return {"id": self.id, "type": self.kind, "call_control_id": self.call_control_id,
                "at": iso(self.created_at), "data": self.data}

    def body(self) -> bytes:
        """The envelope as compact JSON bytes (what webhooks sign and send)."""
        return json.dumps(self.envelope(), separators=(",", ":"), ensure_ascii=False).encode()


class Feed:
    """Queries over the feed table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def after(self, after_id: int, call_control_id: str | None = None, limit: int = 200) -> list[StoredEvent]:
        """Events with an id above after_id (of one call, or all), oldest first."""
        query = select(schema.feed).where(schema.feed.c.id > after_id).order_by(schema.feed.c.id).limit(limit)
        if call_control_id is not None:
            query = query.where(schema.feed.c.call_control_id == call_control_id)
        return self._rows(query)

    def after_kind(self, after_id: int, kind: str, limit: int = 100) -> list[StoredEvent]:
        """Events of one kind with an id above after_id, oldest first."""
        return self._rows(_AFTER_KIND, {"after_id": after_id, "kind": kind, "limit": limit})

    def by_ids(self, ids: Sequence[int]) -> list[StoredEvent]:
        """The events with these ids."""
        return self._rows(select(schema.feed).where(schema.feed.c.id.in_(list(ids))))

    def for_call(self, call_control_id: str, kinds: Sequence[str] | None = None) -> list[StoredEvent]:
        """Every event of one call (optionally of some kinds), oldest first."""
        query = select(schema.feed).where(schema.feed.c.call_control_id == call_control_id)
        if kinds:
            query = query.where(schema.feed.c.kind.in_(list(kinds)))
        return self._rows(query.order_by(schema.feed.c.id))

    def last_id(self) -> int:
        """The newest event's id (0 when the feed is empty)."""
        with self._engine.connect() as conn:
            return int(conn.execute(_LAST_ID).scalar() or 0)

    def _rows(self, query: Any, parameters: dict[str, Any] | None = None) -> list[StoredEvent]:
        with self._engine.connect() as conn:
            return [StoredEvent(r["id"], r["kind"], r["call_control_id"], r["created_at"],
                                json.loads(r["data"])) for r in conn.execute(query, parameters).mappings()]
