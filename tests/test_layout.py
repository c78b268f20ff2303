"""The package layout holds: every module imports alone, imports only point down the layers, and only
the SQL store imports the database's libraries.

The allowed direction is the one docs/layout.md shows. Every module is imported
in one fresh interpreter; before each module, every Lifeline module is dropped from
`sys.modules`, so each import starts from nothing of ours (third-party libraries stay loaded,
which keeps this fast and changes nothing about cycles between our modules).
"""

from __future__ import annotations

import ast
import graphlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each package may import the packages listed for it, and nothing else of ours.
ALLOWED: dict[str, set[str]] = {
    "ivr": set(),
    "insight": {"ivr"},
    "transfer": {"ivr", "insight"},
    "calls": {"ivr", "insight", "transfer"},
    "providers": {"ivr", "insight"},
    "conversation": {"ivr", "insight", "transfer", "calls"},
    "console": {"ivr", "insight", "transfer", "calls", "conversation"},
    "lifeline": {"ivr", "insight", "transfer", "calls", "providers", "conversation", "console"},
    "simulator": {"ivr", "insight", "transfer", "calls", "providers", "conversation", "console", "lifeline"},
    "training": {"ivr", "insight"},  # builds insight's models; the product never imports it
}
PACKAGES = tuple(ALLOWED)
# Every layer but `training` is a package inside `lifeline`; the modules directly in `lifeline` are the
# composition root, the layer called "lifeline". `lifeline/__init__.py` itself belongs to no layer: it
# only names the root's `create_app`, looked up on first use, so importing a part does not load the
# root (the probe leaves it out; an import of it by name counts as the root).
PARTS = frozenset(PACKAGES) - {"lifeline", "training"}
# The database's libraries. Only the SQL store speaks to them: everywhere else an outage is the
# store's StoreError, and no SQL is written outside its backend (docs/architecture.md, "Layers").
DATABASE_LIBRARIES = {"sqlalchemy", "psycopg", "alembic"}
DATABASE_ALLOWED = (
    "lifeline/ivr/store/",  # the SQL backend and its migrations
    "lifeline/db_cli.py",  # `flask db`: runs the migrations (Alembic) on the store's engine
    # Benches and a drill that make, look into and drop databases of their own from outside the
    # app, as the tests do.
    "lifeline/simulator/bench.py", "lifeline/simulator/boot_drill.py", "lifeline/simulator/feed_bench.py",
    "lifeline/simulator/history_bench.py",
)


def layer(module: str) -> str | None:
    """The layer a dotted module name belongs to, or None for what is not ours.

    A bare `lifeline` is the root: `from lifeline import create_app` imports it.
    """
    head, _, rest = module.partition(".")
    if head == "training":
        return "training"
    if head != "lifeline":
        return None
    if not rest:
        return "lifeline"
    part = rest.split(".")[0]
    return part if part in PARTS else "lifeline"


_PROBE = """
import importlib, json, pkgutil, sys, traceback
ours = ("lifeline", "training")
parts = {parts!r}
def layer(module):
    head, _, rest = module.partition(".")
    if head == "training":
        return "training"
    if head != "lifeline" or not rest:
        return None
    part = rest.split(".")[0]
    return part if part in parts else "lifeline"
names = []
for package in ours:
    names += [package] + [m.name for m in pkgutil.walk_packages(importlib.import_module(package).__path__,
                                                                package + ".")]
results = {{}}
for name in names:
    for loaded in [m for m in sys.modules if m.split(".")[0] in ours]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
        error = None
    except BaseException:
        error = traceback.format_exc(limit=3)
    loaded = sorted({{layer(m) for m in sys.modules if layer(m)}})
    results[name] = {{"error": error, "packages": loaded}}
print(json.dumps(results))
"""


def _python_files(package: str) -> list[Path]:
    """The files of one layer (the root's: the modules directly in `lifeline`, not its __init__)."""
    if package == "lifeline":
        return sorted(p for p in (ROOT / "lifeline").glob("*.py") if p.name != "__init__.py")
    folder = ROOT / "training" if package == "training" else ROOT / "lifeline" / package
    # Alembic's migration scripts are run by Alembic (env.py needs its context), not imported.
    return sorted(p for p in folder.rglob("*.py") if "migrations" not in p.parts)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """Modules a file imports (relative imports resolved), each with whether it is typing-only."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                visit(statement, True)
            for statement in node.orelse:
                visit(statement, typing_only)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, typing_only) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                is_module = (ROOT / candidate.replace(".", "/")).with_suffix(".py").is_file() or \
                    (ROOT / candidate.replace(".", "/") / "__init__.py").is_file()
                found.append((candidate if is_module else base, typing_only))
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only)

    visit(ast.parse(path.read_text()), False)
    return found


@pytest.fixture(scope="module")
def fresh_imports() -> dict[str, dict[str, object]]:
    """Import every module alone, in a fresh interpreter, with none of our modules loaded."""
    run = subprocess.run([sys.executable, "-c", _PROBE.format(parts=set(PARTS))], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, f"probing the packages failed:\n{run.stderr}"
    results: dict[str, dict[str, object]] = json.loads(run.stdout.strip().splitlines()[-1])
    return results


def test_every_module_imports_alone_in_a_fresh_interpreter(
        fresh_imports: dict[str, dict[str, object]]) -> None:
    failures = {name: r["error"] for name, r in fresh_imports.items() if r["error"]}
    assert not failures, "\n".join(f"{name}:\n{error}" for name, error in failures.items())
    expected = {_module_name(p) for package in PACKAGES for p in _python_files(package)}
    assert expected <= set(fresh_imports), f"not probed: {sorted(expected - set(fresh_imports))}"


def test_importing_a_module_loads_only_the_packages_below_it(
        fresh_imports: dict[str, dict[str, object]]) -> None:
    wrong = {}
    for name, result in fresh_imports.items():
        package = layer(name)
        if package is None:
            continue
        loaded = result["packages"]
        assert isinstance(loaded, list)
        extra = set(loaded) - ALLOWED[package] - {package}
        if extra:
            wrong[name] = sorted(extra)
    assert not wrong, f"modules that load packages above them: {wrong}"


def test_no_import_statement_points_up_the_layers() -> None:
    wrong = []
    for package in PACKAGES:
        for path in _python_files(package):
            for target, _typing_only in _imports(path):
                top = layer(target)
                if top is not None and top != package and top not in ALLOWED[package]:
                    wrong.append(f"{_module_name(path)} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_there_is_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in _python_files(package):
            graph[_module_name(path)] = {target for target, typing_only in _imports(path)
                                         if not typing_only and layer(target) is not None}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_only_the_sql_store_imports_the_database_libraries() -> None:
    files = [p for package in PACKAGES for p in _python_files(package)] + sorted(ROOT.glob("*.py"))
    wrong = []
    for path in files:
        where = path.relative_to(ROOT).as_posix()
        if where.startswith(DATABASE_ALLOWED):
            continue
        wrong += [f"{where} imports {target}" for target, _typing_only in _imports(path)
                  if target.split(".")[0] in DATABASE_LIBRARIES]
    libraries = ", ".join(sorted(DATABASE_LIBRARIES))
    assert not wrong, (f"only lifeline/ivr/store (and DATABASE_ALLOWED) may import {libraries}: catch "
                       "lifeline.ivr.errors.StoreError for an outage, and add what needs SQL to the store's "
                       "interface (lifeline/ivr/store/base.py, lifeline/ivr/store/outputs.py):\n"
                       + "\n".join(wrong))


def test_the_app_entry_point_alone_registers_the_simulator() -> None:
    lower = [p for package in PACKAGES if package != "simulator" for p in _python_files(package)]
    assert all(layer(t) != "simulator" for p in lower for t, _ in _imports(p))
    assert any(layer(t) == "simulator" for t, _ in _imports(ROOT / "app.py"))
