"""The store a DATABASE_URL names: SQLite or PostgreSQL through SQLAlchemy, or `memory://`."""

from __future__ import annotations

from ..config import MEMORY_URL
from .outputs import OutputStore


def open_store(url: str, *, create_schema: bool = False, sqlite_synchronous: str = "NORMAL") -> OutputStore:
    """The store for url; memory:// keeps everything in this process (trials, tests, dev commands)."""
    if url == MEMORY_URL:
        from .memory import MemoryStore  # the backends load only when chosen

        return MemoryStore()
    from .sql import SqlStore

    return SqlStore(url, create_schema=create_schema, sqlite_synchronous=sqlite_synchronous)
