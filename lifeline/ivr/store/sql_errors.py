"""The SQL backend's outages as the store's contract promises them: StoreError, never a driver's error.

Only connection-level failures are translated (the database is down, unreachable, locked, every
pooled connection busy, or it chose this transaction as a deadlock victim): a retry can succeed.
Any other driver error is a bug and stays what it is, so it is answered as one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ..errors import StoreError

# PoolTimeout: every pooled connection is busy for longer than the pool waits, which a retry can
# outlast as much as an outage.
UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)


def safe_url(url: str) -> str:
    """The database URL without its user and password, fit for a log line or an error message."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"


def first_line(exc: BaseException) -> str:
    """The first line of what the driver said (SQLAlchemy appends the statement and a link after it)."""
    said = str(getattr(exc, "orig", None) or exc).strip()
    return said.splitlines()[0] if said else repr(exc)


def unavailable(what: str, url: str, exc: BaseException) -> StoreError:
    """The StoreError for an outage met while doing `what` (raise it `from exc`)."""
    return StoreError(f"cannot {what}: the database at {safe_url(url)} is unavailable "
                      f"({exc.__class__.__name__}: {first_line(exc)}); check DATABASE_URL and that "
                      "the database server is running")


@contextmanager
def outage_as_store_error(what: str, url: str) -> Iterator[None]:
    """Raise a connection-level failure inside the block as StoreError, its traceback chained."""
    try:
        yield
    except UNAVAILABLE as exc:
        raise unavailable(what, url, exc) from exc
