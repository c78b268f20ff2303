"""The strict emulator's references: command bodies and webhooks held to the Telnyx SDK's types,
and every error code the emulator answers with, with where it comes from.

Requests are checked with `lifeline.ivr.telnyx_schema` (the SDK's parameter `TypedDict`s). Webhooks are
checked against the SDK's event models (pydantic, generated from Telnyx's OpenAPI spec): each
payload field must be one the model declares, and every value must validate.
"""

from __future__ import annotations

import importlib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from lifeline.ivr.telnyx_schema import Problem, check, check_action, dial_type


@dataclass(frozen=True)
class ErrorCode:
    """One error the emulator can answer with, and the reference it rests on (None: our own)."""

    status: int
    title: str
    source: str | None


# Codes and titles as Telnyx documents them; `source: None` marks one we could not confirm in the
# SDK or on developers.telnyx.com, which the emulator flags in the body's `meta`.
ERRORS: dict[str, ErrorCode] = {
    "90018": ErrorCode(422, "Call has already ended",
                       "real 422 body captured from Telnyx (pipecat-ai/pipecat PR #2054)"),
    "10004": ErrorCode(422, "Missing required parameter",
                       "developers.telnyx.com/development/api-fundamentals/api-errors"),
    "10005": ErrorCode(404, "Resource not found",
                       "developers.telnyx.com/development/api-fundamentals/api-errors"),
    "10007": ErrorCode(500, "Unexpected error",
                       "developers.telnyx.com/development/api-fundamentals/api-errors"),
    "10009": ErrorCode(401, "Authentication failed",
                       "developers.telnyx.com/development/api-fundamentals/api-errors"),
    "10015": ErrorCode(400, "Bad Request",
                       "developers.telnyx.com/development/api-fundamentals/api-errors"),
    "10032": ErrorCode(422, "Invalid enumerated value",
                       "Telnyx OpenAPI spec, UnprocessableEntity examples"),
    # The four below were in the emulator without a reference; kept only where Lifeline's
    # handling must be exercised, and marked.
    "90015": ErrorCode(422, "Invalid Call Control ID", None),
    "90034": ErrorCode(422, "Call not answered yet", None),
    "90054": ErrorCode(422, "Call transcription is already in progress", None),
    "90102": ErrorCode(422, "Cannot answer an outbound call", None),
}

_KIND_CODES = {"missing": "10004", "enum": "10032", "unknown": "10015", "type": "10015"}


def error_body(code: str, title: str, detail: str, pointer: str | None = None) -> dict[str, Any]:
    """One entry of Telnyx's `errors` list; codes without a reference say so in `meta`."""
    entry: dict[str, Any] = {"code": code, "title": title, "detail": detail or title}
    if pointer is not None:
        entry["source"] = {"pointer": pointer or "/"}
    known = ERRORS.get(code)
    if known is not None and known.source is None:
        entry["meta"] = {"emulator": "code invented by the emulator: not found in the telnyx SDK "
                                     "or on developers.telnyx.com"}
    return entry


def refusal(problems: list[Problem]) -> tuple[int, dict[str, Any]] | None:
    """Telnyx's 422 for a body that does not fit the SDK's parameter type, or None if it fits."""
    if not problems:
        return None
    errors = []
    for problem in problems:
        code = _KIND_CODES[problem.kind]
        errors.append(error_body(code, ERRORS[code].title, str(problem), problem.pointer))
    return 422, {"errors": errors}


def check_command(name: str, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """The refusal of a call command body, or None when Telnyx's types accept it."""
    return refusal(check_action(name, body))


def check_dial(body: Mapping[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """The refusal of a `POST /v2/calls` body, or None when the SDK's dial type accepts it."""
    return refusal(check(body, dial_type()))


def _event_model(event_type: str) -> Any:
    """The SDK's pydantic model of one event's `data` (e.g. `call.recording.saved`)."""
    name = {"streaming.started": "call_streaming_started", "streaming.stopped": "call_streaming_stopped",
            "streaming.failed": "call_streaming_failed",
            "call.transcription": "transcription"}.get(event_type, event_type.replace(".", "_"))
    module = importlib.import_module(f"telnyx.types.{name}")
    cls = "".join(part.capitalize() for part in name.split("_"))
    if not hasattr(module, cls):
        raise LookupError(f"the telnyx SDK has no model for {event_type}")
    return getattr(module, cls)


@cache
def payload_fields(event_type: str) -> frozenset[str]:
    """The payload fields (wire names) the SDK's model of this event declares."""
    payload = _model_in(_event_model(event_type).model_fields["payload"].annotation)
    return frozenset((info.alias or name) for name, info in payload.model_fields.items())


def event_problems(event: Mapping[str, Any]) -> list[str]:
    """Where a webhook's `data` departs from the SDK's event model; [] when it fits."""
    event_type = str(event.get("event_type"))
    try:
        model = _event_model(event_type)
    except (ImportError, LookupError) as exc:
        return [str(exc)]
    problems = _unknown_fields(model, event, "data")
    if problems:
        return problems
    try:
        model.model_validate(dict(event))
    except Exception as exc:  # noqa: BLE001 - pydantic.ValidationError; its text names each field
        return [f"{event_type}: {exc}"]
    return []


def model_problems(model: Any, value: Mapping[str, Any]) -> list[str]:
    """Where a body departs from an SDK response model: undeclared fields, or invalid values."""
    problems = _unknown_fields(model, value, "body")
    if not problems:
        try:
            model.model_validate(dict(value))
        except Exception as exc:  # noqa: BLE001 - pydantic.ValidationError
            problems.append(str(exc))
    return problems


def _unknown_fields(model: Any, value: Mapping[str, Any], where: str) -> list[str]:
    """Fields the model does not declare (its extra='allow' would otherwise accept anything)."""
    fields = getattr(model, "model_fields", None)
    if fields is None:
        return []
    by_wire = {(info.alias or name): info for name, info in fields.items()}
    problems = []
    for key, item in value.items():
        info = by_wire.get(key)
        if info is None:
            problems.append(f"{where}.{key} is not a field of {model.__module__}.{model.__name__}")
            continue
        nested = _model_in(info.annotation)
        if nested is not None and isinstance(item, Mapping):
            problems.extend(_unknown_fields(nested, item, f"{where}.{key}"))
    return problems


def _model_in(annotation: Any) -> Any:
    for candidate in (annotation, *typing.get_args(annotation)):
        if hasattr(candidate, "model_fields"):
            return candidate
    return None
