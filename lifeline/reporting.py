"""How the entry points report start-up problems: one line each, a file's as file:line."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from lifeline.ivr.errors import Problem
from lifeline.ivr.yamlfile import line_of

EX_CONFIG = 78  # sysexits.h: configuration error


def problem_lines(error: BaseException) -> list[str]:
    """The problems an error reports: one per line, each once, a file's problems as file:line."""
    lines: list[str] = []
    for problem in problems_of(error):
        line = _render(problem)
        if line and line not in lines:
            lines.append(line)
    return lines or [f"{error.__class__.__name__}: cannot start"]


def problems_of(error: BaseException) -> list[Problem]:
    """An error's problems: those it carries, or one (with no location) per line of its message."""
    carried = getattr(error, "problems", None)  # ConfigError's, and the start-up check's
    if isinstance(carried, list):
        return carried
    return [Problem(line.strip()) for line in str(error).splitlines() if line.strip()]


def _render(problem: Problem) -> str:
    """One problem as printed: a file's as `path:line[:column]: message (SETTING)`, the line found
    from its key path when the parser gave none; any other as its text."""
    if problem.path is None:
        return str(problem)
    line = problem.line
    if line is None and problem.keys:
        line = line_of(problem.path, problem.keys)
    where = _relative(problem.path)
    if line is not None:
        where += f":{line}" if problem.column is None else f":{line}:{problem.column}"
    return f"{where}: {problem.message}" + (f" ({problem.setting})" if problem.setting else "")


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def print_problems(problems: Iterable[str], warnings: Iterable[str] = (),
                   stream: TextIO | None = None) -> None:
    """Print problems and warnings, one line each, nothing else."""
    out = stream or sys.stderr
    for line in problems:
        print(f"error: {line}", file=out)
    for line in warnings:
        print(f"warning: {line}", file=out)
    out.flush()
