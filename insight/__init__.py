"""Listening engines: how Lifeline hears the caller. One module per engine, chosen by name."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from ivr.config import ENGINES
from ivr.errors import ConfigError

from .base import ListeningEngine

if TYPE_CHECKING:
    from ivr.config import Settings


def make_engine(settings: Settings) -> ListeningEngine:
    """Build the engine LIFELINE_ENGINE names."""
    target = ENGINES.get(settings.engine)
    if target is None:
        raise ConfigError(f"LIFELINE_ENGINE={settings.engine} is not available: choose one of "
                          f"{', '.join(sorted(ENGINES))}")
    module_name, _, class_name = target.partition(":")
    engine_class = getattr(import_module(module_name), class_name)
    engine: ListeningEngine = engine_class(settings)
    return engine


__all__ = ["ENGINES", "ListeningEngine", "make_engine"]
