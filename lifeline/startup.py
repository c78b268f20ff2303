"""Start-up gate for servers: stop with one line unless the database schema is current."""

from __future__ import annotations

import sys
from pathlib import Path

from dotenv import load_dotenv

from ivr.config import load_settings
from ivr.errors import LifelineError
from ivr.store.sql import SqlStore
from ivr.store.migrate import schema_problem


def require_current_schema() -> None:
    """Exit (status 1, one line on stderr) if settings are wrong or the schema is not current."""
    load_dotenv(Path.cwd() / ".env", override=False)
    try:
        settings = load_settings(None, Path.cwd() / "instance")
        store = SqlStore(settings.database_url, create_schema=False)
    except LifelineError as exc:
        sys.stderr.write(f"lifeline: {exc}\n")
        raise SystemExit(1) from None
    try:
        problem = schema_problem(store.engine)
    finally:
        store.close()
    if problem:
        sys.stderr.write(f"lifeline: {problem}\n")
        raise SystemExit(1)
