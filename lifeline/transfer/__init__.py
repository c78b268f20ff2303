"""Escalation: deciding that a caller needs a person, and putting them through exactly once."""
