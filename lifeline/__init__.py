"""The composition root: builds the Flask app from the other packages and wires them together."""

from .factory import Lifeline, create_app

__all__ = ["Lifeline", "create_app"]
