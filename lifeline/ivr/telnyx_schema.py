"""Command bodies checked against the installed Telnyx SDK's own parameter types.

The SDK's `TypedDict`s under `telnyx.types.calls` are generated from Telnyx's OpenAPI spec, so
they are the closest thing to Telnyx's own validator we can run offline. The rules here are read
from the types themselves (`typing.get_type_hints`), never written out by hand: keys, required
keys, `Literal` enums, nested `TypedDict`s, lists, maps and unions. The start-up checks of
settings and menus and the strict emulator use the same functions.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, NotRequired, Required

from typing_extensions import is_typeddict

# The REST action name (`/v2/calls/{id}/actions/<name>`) -> the SDK module and TypedDict.
ACTION_PARAMS: dict[str, tuple[str, str]] = {
    "answer": ("action_answer_params", "ActionAnswerParams"),
    "speak": ("action_speak_params", "ActionSpeakParams"),
    "gather_using_speak": ("action_gather_using_speak_params", "ActionGatherUsingSpeakParams"),
    "transfer": ("action_transfer_params", "ActionTransferParams"),
    "hangup": ("action_hangup_params", "ActionHangupParams"),
    "transcription_start": ("action_start_transcription_params", "ActionStartTranscriptionParams"),
    "transcription_stop": ("action_stop_transcription_params", "ActionStopTranscriptionParams"),
    "streaming_start": ("action_start_streaming_params", "ActionStartStreamingParams"),
    "streaming_stop": ("action_stop_streaming_params", "ActionStopStreamingParams"),
    "record_start": ("action_start_recording_params", "ActionStartRecordingParams"),
    "record_stop": ("action_stop_recording_params", "ActionStopRecordingParams"),
    "send_dtmf": ("action_send_dtmf_params", "ActionSendDtmfParams"),
}


@dataclass(frozen=True)
class Problem:
    """One reason a body does not fit the SDK's type: where (a JSON pointer), what, and which kind."""

    pointer: str
    detail: str
    kind: str  # "missing", "enum", "unknown", "type"

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.detail}"


def action_type(name: str) -> Any:
    """The SDK TypedDict for a REST action name; KeyError for an action the SDK does not have."""
    module, cls = ACTION_PARAMS[name]
    imported = __import__(f"telnyx.types.calls.{module}", fromlist=[cls])
    return getattr(imported, cls)


def dial_type() -> Any:
    """The SDK TypedDict of `POST /v2/calls`."""
    from telnyx.types.call_dial_params import CallDialParams
    return CallDialParams


def check_action(name: str, body: Mapping[str, Any]) -> list[Problem]:
    """Problems of a command body (wire names, e.g. `from`) for a REST action."""
    return check(body, action_type(name))


def check(value: Any, annotation: Any, pointer: str = "") -> list[Problem]:
    """Every problem of `value` against an SDK type annotation; [] when it fits."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Annotated, Required, NotRequired):
        return check(value, args[0], pointer)
    if annotation is Any or annotation is object:
        return []
    if is_typeddict(annotation):
        return _check_typeddict(value, annotation, pointer)
    if origin is typing.Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return []
        shown = ", ".join(repr(a) for a in args) if len(args) <= 12 else \
            ", ".join(repr(a) for a in args[:12]) + f", … ({len(args)} values)"
        return [Problem(pointer, f"{value!r} is not one of {shown}", "enum")]
    if origin in (typing.Union, types.UnionType):
        return _check_union(value, args, pointer)
    if annotation is type(None):
        return [] if value is None else [Problem(pointer, "must be null", "type")]
    if annotation in (str, int, float, bool):
        return _check_scalar(value, annotation, pointer)
    if origin in (dict, Mapping) or annotation is dict:
        if not isinstance(value, dict):
            return [Problem(pointer, "must be an object", "type")]
        value_type = args[1] if len(args) == 2 else Any
        return [p for key, item in value.items() for p in check(item, value_type, f"{pointer}/{key}")]
    if origin in (list, Sequence, Iterable) or _is_sequence_alias(annotation):
        if not isinstance(value, list):
            return [Problem(pointer, "must be an array", "type")]
        item_type = args[0] if args else Any
        return [p for i, item in enumerate(value) for p in check(item, item_type, f"{pointer}/{i}")]
    # A type this checker does not model (none among the call commands today): accept, never guess.
    return []


def _check_scalar(value: Any, annotation: type, pointer: str) -> list[Problem]:
    if annotation is float:
        fits = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif annotation is int:
        fits = isinstance(value, int) and not isinstance(value, bool)
    else:
        fits = isinstance(value, annotation)
    noun = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}[annotation]
    return [] if fits else [Problem(pointer, f"must be {noun}, not {type(value).__name__}", "type")]


def _check_typeddict(value: Any, annotation: Any, pointer: str) -> list[Problem]:
    if not isinstance(value, dict):
        return [Problem(pointer, "must be an object", "type")]
    fields = _fields(annotation)
    problems: list[Problem] = []
    for wire, (_hint, required) in fields.items():
        if required and wire not in value:
            problems.append(Problem(f"{pointer}/{wire}", f"{wire} is required", "missing"))
    for key, item in value.items():
        if key not in fields:
            problems.append(Problem(f"{pointer}/{key}", f"{key} is not a parameter of "
                                    f"{annotation.__name__}", "unknown"))
            continue
        if item is None and not fields[key][1]:
            continue  # an optional parameter sent as null reads as absent
        problems.extend(check(item, fields[key][0], f"{pointer}/{key}"))
    return problems


def _check_union(value: Any, members: tuple[Any, ...], pointer: str) -> list[Problem]:
    results = [check(value, member, pointer) for member in members]
    if any(not r for r in results):
        return []
    # Report against the member the body meant: the one whose discriminator it matched, else the closest.
    discriminated = [r for r, m in zip(results, members, strict=True) if _discriminator_matches(value, m)]
    if discriminated:
        return discriminated[0]
    closest = min(range(len(results)), key=lambda i: len(results[i]))
    names = [getattr(m, "__name__", str(m)) for m in members]
    if len(names) == 1:
        return results[0]
    first = results[closest][0]
    return [Problem(pointer, f"fits none of {', '.join(names)}; nearest is {names[closest]}, where "
                    f"{first}", first.kind)]


def _discriminator_matches(value: Any, member: Any) -> bool:
    if not is_typeddict(member) or not isinstance(value, dict):
        return False
    fields = _fields(member)
    for key in ("transcription_engine", "type", "record_type"):
        if key in fields and key in value:
            return not check(value[key], fields[key][0])
    return False


@cache
def _fields(annotation: Any) -> dict[str, tuple[Any, bool]]:
    """Wire name -> (type, required) of a TypedDict, from its resolved hints."""
    hints = typing.get_type_hints(annotation, include_extras=True)
    total = getattr(annotation, "__total__", True)
    fields: dict[str, tuple[Any, bool]] = {}
    for name, hint in hints.items():
        required, wire = total, name
        inner = hint
        while typing.get_origin(inner) in (typing.Annotated, Required, NotRequired):
            origin = typing.get_origin(inner)
            if origin is Required:
                required = True
            elif origin is NotRequired:
                required = False
            else:
                for meta in inner.__metadata__:
                    wire = getattr(meta, "alias", None) or wire
            inner = typing.get_args(inner)[0]
        fields[wire] = (inner, required)
    return fields


def _is_sequence_alias(annotation: Any) -> bool:
    # The SDK's SequenceNotStr is a Protocol; treat it as a list of its item type.
    return getattr(annotation, "__name__", "") == "SequenceNotStr" or \
        getattr(typing.get_origin(annotation), "__name__", "") == "SequenceNotStr"


def literal_values(annotation: Any, key: str) -> tuple[Any, ...]:
    """The allowed values of one `Literal` field of a TypedDict (e.g. a menu's `language`)."""
    hint = _fields(annotation)[key][0]
    return typing.get_args(hint) if typing.get_origin(hint) is typing.Literal else ()


def union_members(annotation: Any, key: str) -> tuple[Any, ...]:
    """The TypedDict members of a union-typed field (e.g. the transcription engine configs)."""
    hint = _fields(annotation)[key][0]
    return tuple(m for m in typing.get_args(hint) if is_typeddict(m))


def fields_of(annotation: Any) -> dict[str, tuple[Any, bool]]:
    """Wire name -> (type, required) of an SDK TypedDict."""
    return dict(_fields(annotation))
