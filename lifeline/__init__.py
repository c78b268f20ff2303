"""Lifeline: an IVR that hears who needs a person and puts them through, once.

Every part lives under this package (`lifeline.ivr`, `lifeline.calls`, ...); the modules directly in
it are the composition root, which builds the app from the others. Importing a part must not build
or import the root, so `create_app` and `Lifeline` are looked up only when asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .factory import Lifeline, create_app

__all__ = ["Lifeline", "create_app"]


def __getattr__(name: str) -> Any:
    """`lifeline.create_app` and `lifeline.Lifeline`, imported from the root on first use."""
    if name in __all__:
        from . import factory
        return getattr(factory, name)
    raise AttributeError(f"module 'lifeline' has no attribute {name!r}")
