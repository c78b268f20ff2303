"""Reading the YAML files people edit (menu, rules, scenarios) with errors that name the file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml


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


def read_yaml(path: Path, label: str, error: type[Exception]) -> object:
    """Parse a YAML file; a missing or unparsable file raises `error` prefixed with `label`."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # a SafeLoader
    except OSError as exc:
        raise error(f"{label}: cannot read it ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{label}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from exc
    except yaml.MarkedYAMLError as exc:
        # One line: where, what; PyYAML's own message spans several lines with a code excerpt.
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        raise error(f"{label}: not valid YAML at {where}{what}; fix the indentation or quoting "
                    "there") from exc
    except yaml.YAMLError as exc:
        raise error(f"{label}: not valid YAML ({' '.join(str(exc).split())})") from exc


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
