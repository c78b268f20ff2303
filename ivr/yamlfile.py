"""Reading the YAML files people edit (menu, rules, scenarios) with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import yaml


def read_yaml(path: Path, label: str, error: type[Exception]) -> object:
    """Parse a YAML file; a missing or unparsable file raises `error` prefixed with `label`."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{label}: cannot read it ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise error(f"{label}: not valid YAML ({exc})") from exc
