"""Listening engines: how Lifeline hears the caller. One module per engine, chosen by name."""

from __future__ import annotations

import os
from importlib import import_module
from typing import TYPE_CHECKING

from lifeline.ivr.config import ENGINES
from lifeline.ivr.errors import ConfigError

from .base import ListeningEngine

if TYPE_CHECKING:
    from lifeline.ivr.config import Settings


# onnxruntime (Silero VAD) has shipped with telemetry on Linux since 1.29: at start-up it writes a
# device id and an event database under ~/.cache/Microsoft and may try to upload events. Lifeline
# talks to no one but its providers, so it is off unless the operator sets the variable. This runs
# before any module of this package imports onnxruntime, which reads it when it starts.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


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
