"""The reference in docs/ names everything Lifeline reads: every setting (docs/configuration.md),
every key the menu loader accepts (docs/menu.md), and every rule type and rule setting
(docs/rules.md). Each list is taken from the code, so a new setting, key or type fails here until
it is documented.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from lifeline.ivr import config, menu
from lifeline.ivr.errors import ConfigError, Problem
from lifeline.transfer import rules

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
LIFELINE = ROOT / "lifeline"
# Upper-case names the product reads that are not settings: the WSGI request's keys, gunicorn's
# socket activation, Werkzeug's reloader and Flask's own configuration.
NOT_SETTINGS = {"PATH_INFO", "REQUEST_METHOD", "REMOTE_ADDR", "REMOTE_PORT", "LISTEN_FDS",
                "WERKZEUG_RUN_MAIN", "MAX_CONTENT_LENGTH"}


def _product_sources() -> list[Path]:
    # The product: the package without the simulator (the development commands' emulators).
    return [*(p for p in LIFELINE.rglob("*.py") if "simulator" not in p.relative_to(LIFELINE).parts),
            ROOT / "app.py", ROOT / "gunicorn.conf.py"]


def _read_names(tree: ast.AST) -> set[str]:
    """Upper-case names read by `get("NAME")`/`environ.get("NAME")`/`getenv("NAME")` or `environ["NAME"]`."""
    found = set()
    for node in ast.walk(tree):
        arg: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = (func.attr if isinstance(func, ast.Attribute)
                    else func.id if isinstance(func, ast.Name) else "")
            if name in ("get", "getenv"):
                arg = node.args[0]
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "environ":
            arg = node.slice
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) \
                and re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+", arg.value):
            found.add(arg.value)
    return found


def settings_read() -> set[str]:
    """Every setting the product reads: the provider and Lifeline names written anywhere in it, and
    every upper-case name it reads from the environment or the settings source."""
    names = set(config.KNOWN_SETTINGS) | set(config.TWILIO_KEYS)
    for path in _product_sources():
        text = path.read_text()
        names |= set(re.findall(r"[\"']((?:LIFELINE|TELNYX|TWILIO|SYMBL)_[A-Z0-9_]+)[\"']", text))
        names |= _read_names(ast.parse(text))
    # OTHERS_SETTINGS are the names the SDKs, the CLIs and the test suite read: named in the product
    # only so that the unknown-name check leaves them alone.
    return {n for n in names if not n.startswith("_")} - NOT_SETTINGS - config.OTHERS_SETTINGS


def _table_names(doc: Path) -> set[str]:
    """The backquoted names in the first cell of each table row of a document."""
    cells = re.findall(r"^\|([^|\n]+)\|", doc.read_text(), re.M)
    return {name for cell in cells for name in re.findall(r"`([^`]+)`", cell)}


def test_every_setting_lifeline_reads_is_in_the_configuration_reference() -> None:
    read = settings_read()
    assert {"LIFELINE_AGENTS", "TELNYX_API_KEY", "TWILIO_AUTH_TOKEN", "SYMBL_DIAL_IN", "DATABASE_URL",
            "PROMETHEUS_MULTIPROC_DIR"} <= read  # the scan itself still finds what it should
    missing = read - _table_names(DOCS / "configuration.md")
    assert not missing, f"settings read but not in docs/configuration.md's table: {sorted(missing)}"


def test_the_configuration_reference_names_no_setting_lifeline_does_not_read() -> None:
    documented = {n for n in _table_names(DOCS / "configuration.md")
                  if re.fullmatch(r"(LIFELINE|TELNYX|TWILIO|SYMBL)_[A-Z0-9_]+", n)}
    assert documented <= settings_read()


def test_every_menu_key_the_loader_accepts_is_in_the_menu_reference() -> None:
    accepted = set(menu._TOP_KEYS) | set(menu._MENU_KEYS) | set(menu._OPTION_KINDS) | {"then"}
    missing = accepted - _table_names(DOCS / "menu.md")
    assert not missing, f"menu keys the loader accepts but docs/menu.md does not name: {sorted(missing)}"
    # `then` is the one option key outside _OPTION_KINDS; the loader must still accept it.
    problems: list[Problem] = []
    loaded = menu._build({"greeting": "Hi.", "menus": {"main": {"prompt": "Press 1.", "options": {
        "1": {"say": "Hello.", "then": "goodbye"}}}}}, problems)
    assert loaded is not None and not problems


def _rule_file_keys() -> tuple[set[str], set[str]]:
    """The keys a rules file may hold at the top, and those every rule takes, read from the loader."""
    tree = ast.parse(Path(rules.__file__).read_text())
    top: set[str] = set()
    common: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "load_rules":
            for sub in ast.walk(node):
                if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Sub) \
                        and isinstance(sub.right, ast.Set):
                    top |= {e.value for e in sub.right.elts if isinstance(e, ast.Constant)}
        if isinstance(node, ast.FunctionDef) and node.name == "_load_rule":
            for sub in ast.walk(node):
                if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) \
                        and sub.func.attr == "pop" and sub.args and isinstance(sub.args[0], ast.Constant):
                    common.add(sub.args[0].value)
    return top, common


# A value for each setting some rule type requires; a type needing another is reported by name.
_REQUIRED_SAMPLES: dict[str, Any] = {"intents": ["wants_person"], "phrases": ["a person"]}


def _settings_of(kind: type[rules.Rule]) -> set[str]:
    """The settings a rule type reads, from the type itself: built with only what it requires."""
    params: dict[str, Any] = {}
    for _ in range(3):
        try:
            return set(kind("probe", None, dict(params), "probe").consumed)
        except ConfigError as exc:
            keys = {str(k) for p in exc.problems for k in p.keys} & set(_REQUIRED_SAMPLES)
            if not keys:
                raise
            params |= {k: _REQUIRED_SAMPLES[k] for k in keys}
    pytest.fail(f"rule type {kind.type_name} could not be built")


def test_every_rule_type_and_setting_is_in_the_rules_reference() -> None:
    text = (DOCS / "rules.md").read_text()
    headings = set(re.findall(r"^### `([a-z_]+)`", text, re.M))
    assert not set(rules.RULE_TYPES) - headings, \
        f"rule types without a section: {sorted(set(rules.RULE_TYPES) - headings)}"
    sections = re.split(r"^### ", text, flags=re.M)
    top, common = _rule_file_keys()
    assert {"rules", "handoff"} <= top and {"name", "type", "enabled", "reason"} <= common
    shared = _table_names(DOCS / "rules.md")
    assert not (top | common) - shared, f"rules-file keys missing: {sorted((top | common) - shared)}"
    for type_name, kind in rules.RULE_TYPES.items():
        [section] = [s for s in sections if s.startswith(f"`{type_name}`")]
        documented = {name for cell in re.findall(r"^\|([^|\n]+)\|", section, re.M)
                      for name in re.findall(r"`([^`]+)`", cell)}
        missing = _settings_of(kind) - documented
        assert not missing, f"rule type {type_name}: settings missing from docs/rules.md: {sorted(missing)}"


def test_links_between_the_documents_lead_somewhere() -> None:
    def anchors(doc: Path) -> set[str]:
        found = set()
        for heading in re.findall(r"^#+ (.+)$", doc.read_text(), re.M):
            slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            found.add(slug)
        return found

    broken = []
    for doc in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (doc.parent / path).resolve() if path else doc
            if not dest.exists():
                broken.append(f"{doc.name}: {target}")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{doc.name}: {target} (no such heading)")
    assert not broken, broken
