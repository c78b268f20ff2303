"""Reading the YAML files people edit (menu, rules, scenarios) with errors that name the file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from .errors import ConfigError, Problem


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping: YAML keeps the last one silently,
    so a second `"1":` in a menu would replace the first with no word said. A merge (`<<: *base`)
    and a key that overrides what it merged are not repeats."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        seen: set[tuple[type, object]] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool):
                continue
            marker = (type(key), key)  # typed: `1:` and `true:` are different keys
            if marker in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice in one mapping", key_node.start_mark)
            seen.add(marker)
        return super().construct_mapping(node, deep=deep)


@dataclass(frozen=True)
class SyntaxProblem(Problem):
    """Where the YAML parser stopped. Its message follows a printed file:line:column; its text on
    its own (ConfigError's message) says the line and column in words instead."""

    what: str = ""  # the parser's complaint and the fix, without where

    def __str__(self) -> str:
        return f"{self.label}not valid YAML at line {self.line}, column {self.column}: {self.what}"


class _Unreadable(Exception):
    """A YAML file that could not be read or parsed, with the one problem to report."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def read_yaml(path: Path, label: str, error: type[Exception]) -> object:
    """Parse a YAML file; a missing or unparsable file raises `error` prefixed with `label`."""
    try:
        return _parse(path)
    except _Unreadable as exc:
        raise error(f"{label}: {exc.problem}") from exc.__cause__


def read_setting_yaml(path: Path, setting: str) -> object:
    """Parse the YAML file a setting names; a missing or unparsable file raises ConfigError with one
    Problem in that file (at the parser's line and column when it stopped in the text)."""
    try:
        return _parse(path)
    except _Unreadable as exc:
        raise ConfigError([replace(exc.problem, setting=setting, path=path)]) from exc.__cause__


def _parse(path: Path) -> object:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # a SafeLoader
    except OSError as exc:
        raise _Unreadable(Problem(f"cannot read it ({exc.strerror})")) from exc
    except UnicodeDecodeError as exc:
        raise _Unreadable(Problem(f"not UTF-8 text (byte {exc.start}); save the file as UTF-8")) from exc
    except yaml.MarkedYAMLError as exc:
        # One line: where, what; PyYAML's own message spans several lines with a code excerpt.
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        what += "; fix the indentation or quoting there"
        mark = exc.problem_mark
        if mark is None:
            raise _Unreadable(Problem(f"not valid YAML at {what}")) from exc
        raise _Unreadable(SyntaxProblem(f"not valid YAML: {what}", line=mark.line + 1,
                                        column=mark.column + 1, what=what)) from exc
    except yaml.YAMLError as exc:
        raise _Unreadable(Problem(f"not valid YAML ({' '.join(str(exc).split())})")) from exc


def line_of(path: Path, keys: Sequence[str | int]) -> int | None:
    """The 1-based line of the deepest node found along keys (mapping keys, list indexes)."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    line = None
    for key in keys:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if str(k.value) == str(key)), None)
            if found is None:
                break
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line
