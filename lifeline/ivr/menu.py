"""The IVR menu: loaded from YAML, checked at start-up, and consulted without side effects."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError, Problem
from .telnyx_schema import action_type, literal_values, union_members
from .yamlfile import read_setting_yaml

OPERATOR_DIGIT = "0"  # the operator in every menu; acted on when pressed (a `dtmf` rule or the menu's 0)
KEYS = "0123456789*#"  # every key a phone sends as DTMF
_TOP_KEYS = {"voice", "language", "greeting", "start", "retries", "timeout_ms", "invalid",
             "no_input", "goodbye", "no_agent", "offer_message", "leave_message", "whisper", "menus"}
# What an agent hears on answering, before the caller is put through (Twilio plays it; Telnyx's
# transfer has none). `{reason}` is the deciding rule's reason, said without its figures.
DEFAULT_WHISPER = "Caller coming through: {reason}."
REASON_MARK = "{reason}"
_MENU_KEYS = {"prompt", "options"}
_OPTION_KINDS = ("menu", "say", "transfer", "goodbye", "pause_listening", "resume_listening")
_SAYS = ("say", "pause_listening", "resume_listening")  # say a text, then `then` (default: the same menu)
GOODBYE = "goodbye"
AFTER_AGENTS = "_after_agents"  # the built-in menu offered when no agent took the call
VOICEMAIL_MAX_S = 120
# The most text one prompt may hold: Telnyx's limit on a speak's or gather's payload (the SDK's
# docstring). A menu said after a lead-in sends both as one payload, so their sum counts.
MAX_PROMPT_CHARS = 3000
# How long a goodbye may take to say: slower than text-to-speech reads (about 2.5 words a
# second), plus a margin for Telnyx to start playing it and to post `call.speak.ended`.
GOODBYE_WORDS_PER_S = 2.0
GOODBYE_MARGIN_S = 10.0


@dataclass(frozen=True)
class Option:
    """What one key does: open a menu, say something, transfer, leave a message, or say goodbye."""

    kind: str
    target: str | None = None
    text: str | None = None


def _without_figures(reason: str) -> str:
    """A decision's reason without its closing parenthesis (nested ones too): every rule writes its
    words, then the evidence in figures, e.g. "caller is angry (P(angry) 0.91)"."""
    if not reason.endswith(")"):
        return reason
    depth = 0
    for at in range(len(reason) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(reason[at], 0)
        if depth == 0:
            return reason[:at].rstrip()
    return reason  # unbalanced: say it as written


@dataclass(frozen=True)
class MenuNode:
    """One menu: its prompt and its keys."""

    name: str
    prompt: str
    options: dict[str, Option]
    operator_key: bool = True  # whether 0 is offered for the operator

    @property
    def keys(self) -> str:
        """The keys this menu accepts, in order."""
        return "".join(sorted(set(self.options) | ({OPERATOR_DIGIT} if self.operator_key else set())))


@dataclass(frozen=True)
class Menu:
    """The whole IVR."""

    voice: str
    language: str
    greeting: str
    start: str
    retries: int
    timeout_ms: int
    invalid: str
    no_input: str
    goodbye: str
    no_agent: str
    offer_message: str
    leave_message: str
    nodes: dict[str, MenuNode]
    whisper: str = DEFAULT_WHISPER

    def whisper_for(self, reason: str) -> str:
        """The whisper with the reason as a person would say it: the rule's words, not its figures."""
        spoken = _without_figures(reason.strip()) or "no reason was given"
        return self.whisper.replace(REASON_MARK, spoken[:200])

    @property
    def goodbye_wait_s(self) -> float:
        """The longest the hangup waits for the goodbye's `call.speak.ended`: its longest text's time."""
        lead_ins = [option.text or "" for node in self.nodes.values() for option in node.options.values()
                    if option.target == GOODBYE]  # `say` (or a pause key's) text, then goodbye
        return max(self.say_wait_s(f"{lead_in} {self.goodbye}") for lead_in in ["", *lead_ins])

    @staticmethod
    def say_wait_s(text: str) -> float:
        """The longest a prompt of this text may take to be said and its end reported."""
        return GOODBYE_MARGIN_S + len(text.split()) / GOODBYE_WORDS_PER_S

    def has(self, node: str | None) -> bool:
        """Whether a call can be at this menu (one of the file's, or the built-in after-agents one)."""
        return node in self.nodes

    def option(self, node: str, digits: str) -> Option | None:
        """The option behind a key press in a menu."""
        return self.nodes[node].options.get(digits)

    def operator(self, node: str | None) -> Option:
        """What the operator key does in a menu: its own `0` option, or the default transfer."""
        found = self.nodes[node].options.get(OPERATOR_DIGIT) if node in self.nodes else None
        return found or Option("transfer", text="caller pressed 0 for the operator")

    def gather(self, node: str, lead_in: str | None = None) -> dict[str, Any]:
        """Parameters of the gather_using_speak that opens a menu, after an optional lead-in."""
        prompt = self.nodes[node].prompt
        params: dict[str, Any] = {
            "payload": f"{lead_in} {prompt}" if lead_in else prompt,
            "voice": self.voice,
            "language": self.language,
            "valid_digits": self.nodes[node].keys,
            "minimum_digits": 1,
            "maximum_digits": 1,
            # Lifeline counts retries itself so that the bound is visible and configurable.
            "maximum_tries": 1,
            "timeout_millis": self.timeout_ms,
        }
        if "#" in self.nodes[node].keys:
            # `#` ends a gather by default (terminating_digit "#"); only "" makes it a key.
            params["terminating_digit"] = ""
        return params

    def speak(self, text: str) -> dict[str, Any]:
        """Parameters of a plain speak."""
        return {"payload": text, "voice": self.voice, "language": self.language}


def load_menu(path: Path) -> Menu:
    """Read and check an IVR file; ConfigError names the file, the key and the fix."""
    document = read_setting_yaml(path, "LIFELINE_IVR")
    problems: list[Problem] = []
    menu = _build(document, problems)
    if problems or menu is None:
        raise ConfigError([replace(p, setting="LIFELINE_IVR", path=path) for p in problems])
    return menu


def _build(document: object, problems: list[Problem]) -> Menu | None:
    """The menu a document describes, or None with its problems (each at its key path) in `problems`."""
    if not isinstance(document, dict):
        problems.append(Problem("the file must be a mapping with `menus:` and `start:`"))
        return None
    unknown = set(document) - _TOP_KEYS
    if unknown:
        problems.append(Problem(f"unknown keys {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}"))

    def text(key: str, default: str | None = None) -> str:
        value = document.get(key, default)
        if not isinstance(value, str) or not value.strip():
            problems.append(Problem(f"`{key}` must be a non-empty text", keys=(key,)))
            return ""
        return value.strip()

    def number(key: str, default: int, low: int, high: int) -> int:
        value = document.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append(Problem(f"`{key}` must be a whole number from {low} to {high}", keys=(key,)))
            return default
        return value

    raw_menus = document.get("menus")
    if not isinstance(raw_menus, dict) or not raw_menus:
        problems.append(Problem("`menus` must map menu names to {prompt, options}", keys=("menus",)))
        raw_menus = {}
    nodes = {str(name): _node(str(name), body, problems) for name, body in raw_menus.items()}
    if AFTER_AGENTS in nodes:
        problems.append(Problem(f"menus.{AFTER_AGENTS}: the name is reserved for the built-in after-agents "
                                "menu", keys=("menus", AFTER_AGENTS)))
    start = text("start", "main")
    if start and nodes and start not in nodes:
        problems.append(Problem(f"`start: {start}` names no menu; menus are {sorted(nodes)}",
                                keys=("start",)))
    for node in nodes.values():
        for digit, option in node.options.items():
            if option.kind == "menu" or (option.kind in _SAYS and option.target not in (None, GOODBYE)):
                if option.target not in nodes:
                    problems.append(Problem(f"menus.{node.name}.options.{digit} leads to unknown menu "
                                            f"{option.target!r}; menus are {sorted(nodes)}"
                                            + _ending_hint(option),
                                            keys=("menus", node.name, "options", digit)))
    # An option refused above may be the one path to a menu: saying that menu cannot be reached
    # would be a second line for the same slip, so reachability waits until the options are right.
    options_refused = any("options" in problem.keys for problem in problems)
    if start in nodes and not options_refused:
        unreachable = set(nodes) - _reachable(start, nodes)
        if unreachable:
            problems.append(Problem(f"menus {sorted(unreachable)} cannot be reached from `start: {start}`"))
    offer_message = text("offer_message", "To go back to the menu, press 1. "
                                          "To leave a message after the tone, press 2.")
    # Offered when no agent took the call: a menu like the file's, built here, without 0
    # (the transfer was already spent) and not reachable from `start`.
    nodes[AFTER_AGENTS] = MenuNode(AFTER_AGENTS, offer_message,
                                   {"1": Option("menu", target=start), "2": Option("voicemail")},
                                   operator_key=False)
    menu = Menu(
        voice=text("voice", "AWS.Polly.Joanna-Neural"),
        language=text("language", "en-US"),
        greeting=text("greeting"),
        start=start,
        retries=number("retries", 2, 0, 5),
        timeout_ms=number("timeout_ms", 8000, 1000, 60000),
        invalid=text("invalid", "Sorry, that is not one of the options."),
        no_input=text("no_input", "Sorry, I did not hear a choice."),
        goodbye=text("goodbye", "Thank you for calling. Goodbye."),
        no_agent=text("no_agent", "Sorry, nobody is available to take your call right now."),
        offer_message=offer_message,
        leave_message=text("leave_message", "Please leave your message after the tone, then hang up."),
        nodes=nodes,
        whisper=text("whisper", DEFAULT_WHISPER),
    )
    if re.search(r"[{}]", menu.whisper.replace(REASON_MARK, "")):
        problems.append(Problem(f"`whisper` may hold {REASON_MARK} (the reason for the transfer) and no "
                                "other braces", keys=("whisper",)))
    _check_language(menu, problems)
    _check_lengths(menu, problems)
    return None if problems else menu


def _check_lengths(menu: Menu, problems: list[Problem]) -> None:
    """Every text as it will be said (a lead-in joined to what follows it) within Telnyx's limit:
    a longer one is refused by Telnyx, and the caller would hear silence."""
    # (where, its key path, text as sent): a problem is located at a menu option that leads in;
    # the file's own texts (invalid, greeting, ...) are named but left unlocated, as they always were.
    said: list[tuple[str, tuple[str | int, ...], str]] = []
    # `no_agent` is said before the menu a caller is in when a transfer was already spent (a second
    # 0, a later rule), so it may lead any menu.
    common: list[tuple[str, tuple[str | int, ...], str]] = [
        ("invalid", (), menu.invalid), ("no_input", (), menu.no_input), ("no_agent", (), menu.no_agent)]
    for node in menu.nodes.values():
        lead_ins = [*common, *([("greeting", (), menu.greeting)] if node.name == menu.start else [])]
        for other in menu.nodes.values():
            for key, option in other.options.items():
                # A `say` then this menu (its own, when `then` is left out).
                if option.text and option.kind in _SAYS and (option.target or other.name) == node.name:
                    lead_ins.append((f"menus.{other.name}.options.{key}",
                                     ("menus", other.name, "options", key), option.text))
        where = "offer_message" if node.name == AFTER_AGENTS else f"menus.{node.name}.prompt"
        said += [(f"{lead} + {where}", keys, f"{text} {node.prompt}") for lead, keys, text in lead_ins]
    said += [(f"menus.{node.name}.options.{key} + goodbye", ("menus", node.name, "options", key),
              f"{option.text} {menu.goodbye}")
             for node in menu.nodes.values() for key, option in node.options.items()
             if option.text and option.target == GOODBYE]
    said += [("goodbye", (), menu.goodbye), ("leave_message", (), menu.leave_message)]
    for where, keys, text in said:
        if len(text) > MAX_PROMPT_CHARS:
            problems.append(Problem(f"{where} is {len(text)} characters when said, over the "
                                    f"{MAX_PROMPT_CHARS} a prompt may hold (Telnyx refuses longer ones): "
                                    "shorten it or split the menu", keys=keys))


def _check_language(menu: Menu, problems: list[Problem]) -> None:
    """`language` as the SDK's speak types allow, so Telnyx never refuses a prompt. The voice is
    checked by the deployment (lifeline/providers/voices.py): which voices work depends on its providers."""
    speak = action_type("gather_using_speak")
    languages = [str(v) for v in literal_values(speak, "language")]
    if languages and menu.language not in languages:
        problems.append(Problem(f"`language: {menu.language}` is not a Telnyx speech language: choose one "
                                f"of {', '.join(languages)}", keys=("language",)))


def telnyx_voice_problem(voice: str) -> str | None:
    """Why Telnyx would refuse a prompt in this voice (the SDK's speak types), or None if it would not."""
    # Voices are free text of the form <Provider>.<Model>.<VoiceId>; the providers are the SDK's
    # voice_settings kinds, plus the legacy basic voices.
    speak = action_type("gather_using_speak")
    providers = {str(v).lower() for member in union_members(speak, "voice_settings")
                 for v in literal_values(member, "type")}
    provider = voice.split(".", 1)[0].lower()
    if voice.lower() in ("female", "male") or (provider in providers and "." in voice):
        return None
    return (f"`voice: {voice}` is not a Telnyx voice: write <Provider>.<Model>.<VoiceId> "
            f"(e.g. AWS.Polly.Joanna-Neural) with a provider among {', '.join(sorted(providers))}")


def _node(name: str, body: object, problems: list[Problem]) -> MenuNode:
    where, at = f"menus.{name}", ("menus", name)
    if not isinstance(body, dict):
        problems.append(Problem(f"{where} must be a mapping with `prompt` and `options`", keys=at))
        return MenuNode(name, "", {})
    for key in sorted(set(map(str, body)) - _MENU_KEYS):
        problems.append(Problem(f"{where}.{key} is not a menu key: {_menu_key_hint(key)}", keys=(*at, key)))
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        problems.append(Problem(f"{where}.prompt must be a non-empty text", keys=(*at, "prompt")))
        prompt = ""
    raw_options = body.get("options")
    if not isinstance(raw_options, dict) or not raw_options:
        problems.append(Problem(f"{where}.options must map keys (0-9, *, #) to actions",
                                keys=(*at, "options")))
        raw_options = {}
    options: dict[str, Option] = {}
    for key, spec in raw_options.items():
        digit = str(key)
        if len(digit) != 1 or digit not in KEYS:  # one key: "12" is a substring of KEYS, not a key
            problems.append(Problem(f"{where}.options key {key!r} must be one of 0-9, * or # "
                                    "(quote it: \"1\")", keys=(*at, "options")))
            continue
        option = _option(f"{where}.options.{digit}", (*at, "options", digit), spec, problems)
        if option is None:
            continue
        if digit == OPERATOR_DIGIT and option.kind != "transfer":
            problems.append(Problem(f"{where}.options.0 must be a transfer: 0 always means the operator",
                                    keys=(*at, "options", digit)))
        options[digit] = option
    return MenuNode(name, prompt.strip(), options)


def _menu_key_hint(key: str) -> str:
    """What to write instead of an unknown key in a menu."""
    if key in _TOP_KEYS:
        # A newcomer's guess: a per-menu timeout or retry count. They are the whole file's.
        return f"`{key}` is set once for the whole file, at the top level, not per menu"
    close = difflib.get_close_matches(key, sorted(_MENU_KEYS), n=1)
    guess = f"did you mean `{close[0]}`? " if close else ""
    return f"{guess}a menu has only `prompt` and `options`"


def _option(where: str, at: tuple[str | int, ...], spec: object, problems: list[Problem]) -> Option | None:
    """One key's option; `where` names it in a problem's words, `at` is its key path in the file."""
    if not isinstance(spec, dict):
        problems.append(Problem(f"{where} must be a mapping with one of {list(_OPTION_KINDS)}", keys=at))
        return None
    kinds = [k for k in _OPTION_KINDS if k in spec]
    extra = set(spec) - set(_OPTION_KINDS) - {"then"}
    if len(kinds) != 1 or extra:
        problems.append(Problem(f"{where} must have exactly one of {list(_OPTION_KINDS)} "
                                f"(plus `then` after {' or '.join(_SAYS)}), found {sorted(spec)}", keys=at))
        return None
    kind = kinds[0]
    value = spec[kind]
    if "then" in spec and kind not in _SAYS:
        problems.append(Problem(f"{where}.then follows only {' or '.join(_SAYS)}: a {kind} option goes "
                                "where it says; drop `then` there", keys=(*at, "then")))
        return None
    if kind == "menu":
        return Option("menu", target=str(value))
    if kind == "goodbye":
        if value is not True:
            problems.append(Problem(f"{where}.goodbye must be true (say goodbye and hang up); to do "
                                    "something else, use menu, say or transfer", keys=(*at, "goodbye")))
            return None
        return Option("goodbye")
    if not isinstance(value, str) or not value.strip():
        what = (": the reason the agent is given (e.g. `transfer: caller asked for billing`)"
                if kind == "transfer" else "")
        problems.append(Problem(f"{where}.{kind} must be a non-empty text{what}", keys=(*at, kind)))
        return None
    if kind == "transfer":
        return Option("transfer", text=value.strip())
    then = spec.get("then")
    return Option(kind, target=str(then) if then is not None else None, text=value.strip())


# Words people write for "end the call" where a menu name is expected.
_ENDINGS = frozenset({"hangup", "hang_up", "hang-up", "end", "exit", "bye", "quit", "disconnect", "stop"})


def _ending_hint(option: Option) -> str:
    """How to end the call, when an unknown menu's name says that was meant."""
    if str(option.target).lower() not in _ENDINGS:
        return ""
    how = f"`then: {GOODBYE}`" if option.kind in _SAYS else f"`{GOODBYE}: true`"
    return f"; to say goodbye and hang up, write {how}"


def _reachable(start: str, nodes: dict[str, MenuNode]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for option in nodes[todo.pop()].options.values():
            target = option.target
            if target in nodes and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen
