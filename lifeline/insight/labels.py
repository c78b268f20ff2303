"""The label names of corpus/LABELS.md, in one place (no imports: rules and models both read it)."""

INTENTS: tuple[str, ...] = ("wants_person", "leave_or_cancel", "legal_or_complaint", "bot_complaint")
FRUSTRATION_LEVELS: tuple[str, ...] = ("calm", "annoyed", "angry")
