"""The `transcription_config` Telnyx needs for each speech engine, built and checked at start-up.

Each engine takes its own `transcription_engine_config` (Deepgram needs a model, Azure a region,
the Telnyx engine only short language codes). The choices come from the SDK's parameter types,
so a setting Telnyx would refuse on `answer` — where a 4xx means the call is never answered —
stops start-up instead, naming the setting and the values it may take.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import Problem
from .telnyx_schema import action_type, check, fields_of, literal_values, union_members

ENGINE_SETTING = "LIFELINE_TRANSCRIPTION_ENGINE"
LANGUAGE_SETTING = "LIFELINE_TRANSCRIPTION_LANGUAGE"
MODEL_SETTING = "LIFELINE_TRANSCRIPTION_MODEL"
REGION_SETTING = "LIFELINE_TRANSCRIPTION_REGION"
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class TranscriptionChoice:
    """What the operator asked for; every field as written in the environment (None when unset)."""

    engine: str
    language: str | None = None
    model: str | None = None
    region: str | None = None


def build_transcription_config(choice: TranscriptionChoice, problems: list[Problem]) -> dict[str, Any] | None:
    """The `transcription_config` of `answer` for this choice, or None with the reasons in `problems`."""
    request = action_type("transcription_start")
    engines = [str(v) for v in literal_values(request, "transcription_engine")]
    engine = _match(choice.engine, engines)
    if engine is None:
        named = [e for e in engines if len(e) > 1]  # the SDK also lists one-letter aliases (A, B)
        aliases = [e for e in engines if len(e) == 1]
        problems.append(Problem(
            f"{ENGINE_SETTING}={choice.engine!r} is not a Telnyx transcription engine: "
            f"choose one of {', '.join(named)}"
            + (f" (or their one-letter aliases {', '.join(aliases)})" if aliases else ""),
            ENGINE_SETTING))
        return None
    members = [m for m in union_members(request, "transcription_engine_config") if _serves(m, engine)]
    if not members:
        problems.append(Problem(
            f"{ENGINE_SETTING}={engine}: the installed telnyx SDK has no settings type for "
            "this engine; choose another engine or upgrade the SDK pin",
            ENGINE_SETTING))
        return None
    member = _pick_member(members, engine, choice, problems)
    if member is None:
        return None
    fields = fields_of(member)
    before = len(problems)
    engine_config: dict[str, Any] = {"transcription_engine": _engine_value(member, engine)}
    model = _model(member, fields, engine, choice.model, problems)
    if model is not None:
        engine_config["transcription_model"] = model
    language = _language(fields, engine, model, choice.language, problems)
    if language is not None:
        engine_config["language"] = language
    region = _region(fields, engine, choice.region, problems)
    if region is not None:
        engine_config["region"] = region
    if len(problems) > before:
        return None
    config = {"transcription_engine": engine, "transcription_engine_config": engine_config,
              "transcription_tracks": "inbound"}
    # The same check the strict emulator makes: what we would send must fit the SDK's own type.
    for problem in check(config, fields_of(action_type("answer"))["transcription_config"][0]):
        problems.append(Problem(
            f"{ENGINE_SETTING}={engine}: Telnyx would refuse the transcription settings "
            f"({problem}); check {MODEL_SETTING}, {LANGUAGE_SETTING} and {REGION_SETTING}",
            ENGINE_SETTING))
    return config if len(problems) == before else None


def _match(value: str, allowed: list[str]) -> str | None:
    """The allowed spelling of a value, ignoring case (`deepgram` -> `Deepgram`)."""
    for candidate in allowed:
        if candidate.lower() == value.strip().lower():
            return candidate
    return None


def _literal(fields: dict[str, tuple[Any, bool]], key: str) -> tuple[str, ...]:
    hint = fields.get(key, (None, False))[0]
    return tuple(str(v) for v in typing.get_args(hint)) if typing.get_origin(hint) is typing.Literal else ()


def _serves(member: Any, engine: str) -> bool:
    values = _literal(fields_of(member), "transcription_engine")
    # The SDK tells its Deepgram configs apart by model: their engine literal is "deepgram/nova-N".
    return engine in values or any(v.startswith(f"{engine.lower()}/") for v in values)


def _engine_value(member: Any, engine: str) -> str:
    values = _literal(fields_of(member), "transcription_engine")
    return engine if engine in values else values[0]


def _pick_member(members: list[Any], engine: str, choice: TranscriptionChoice,
                 problems: list[Problem]) -> Any | None:
    if len(members) == 1:
        return members[0]
    models = {m: _literal(fields_of(m), "transcription_model") for m in members}
    offered = sorted({v for values in models.values() for v in values})
    if not choice.model:
        problems.append(Problem(
            f"{MODEL_SETTING} is not set: the {engine} engine needs a model; set one of "
            f"{', '.join(offered)}",
            MODEL_SETTING))
        return None
    for member, values in models.items():
        if choice.model.strip() in values:
            return member
    problems.append(Problem(
        f"{MODEL_SETTING}={choice.model!r} is not a {engine} model: choose one of "
        f"{', '.join(offered)}",
        MODEL_SETTING))
    return None


def _model(member: Any, fields: dict[str, tuple[Any, bool]], engine: str, wanted: str | None,
           problems: list[Problem]) -> str | None:
    # Model names are case-sensitive at Telnyx (`deepgram/nova-3`): only the exact spelling counts.
    return _setting(fields, "transcription_model", MODEL_SETTING, "model", engine, wanted, problems,
                    lambda value, offered: value if value in offered else None)


def _language(fields: dict[str, tuple[Any, bool]], engine: str, model: str | None,
              wanted: str | None, problems: list[Problem]) -> str | None:
    label = f"{engine} ({model})" if model else engine
    if "language" not in fields:
        if wanted:
            problems.append(Problem(
                f"{LANGUAGE_SETTING}={wanted!r}: the {label} engine detects the language "
                f"itself and takes none; unset {LANGUAGE_SETTING}",
                LANGUAGE_SETTING))
        return None
    code = (wanted or DEFAULT_LANGUAGE).strip().replace("_", "-")
    offered = _literal(fields, "language")
    if not offered:
        return code  # a free-form language field
    exact = _match(code, list(offered))
    if exact is not None:
        return exact
    # `en-US` for an engine that takes only `en`: the primary subtag says the same thing.
    primary = _match(code.split("-")[0], list(offered))
    if primary is not None:
        return primary
    near = [o for o in offered if o.lower().startswith(code.split("-")[0].lower())]
    hint = f"for this language it offers {', '.join(near)}" if near else \
        f"it offers {', '.join(offered[:20])}{', …' if len(offered) > 20 else ''}"
    problems.append(Problem(
        f"{LANGUAGE_SETTING}={code!r} is not a language of the {label} engine: {hint}",
        LANGUAGE_SETTING))
    return None


def _region(fields: dict[str, tuple[Any, bool]], engine: str, wanted: str | None,
            problems: list[Problem]) -> str | None:
    return _setting(fields, "region", REGION_SETTING, "region", engine, wanted, problems,
                    lambda value, offered: _match(value, list(offered)))


def _setting(fields: dict[str, tuple[Any, bool]], key: str, setting: str, noun: str, engine: str,
             wanted: str | None, problems: list[Problem],
             pick: Callable[[str, tuple[str, ...]], str | None]) -> str | None:
    """One engine field from its setting: refused when the engine takes none, required or offered."""
    offered = _literal(fields, key)
    if key not in fields:
        if wanted:
            problems.append(Problem(
                f"{setting}={wanted!r}: the {engine} engine takes no {noun}; unset {setting}",
                setting))
        return None
    if not wanted:
        if fields[key][1]:
            problems.append(Problem(
                f"{setting} is not set: the {engine} engine needs a {noun}; set one of "
                f"{', '.join(offered)}",
                setting))
        return None  # Telnyx's default for this engine
    chosen = pick(wanted.strip(), offered) if offered else wanted.strip()
    if chosen is None:
        problems.append(Problem(
            f"{setting}={wanted!r} is not a {engine} {noun}: choose one of {', '.join(offered)}",
            setting))
    return chosen
