"""Start-up problems from every entry point: only the problem lines, each once, and a non-zero exit.

The entry points run as real processes (gunicorn, `flask ...`) in an empty directory with a
clean environment, all started side by side, since each pays Python's and the app's import time.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dotenv import dotenv_values
from flask import Flask

from lifeline import create_app
from lifeline.ivr.config import PLACEHOLDERS, load_settings
from lifeline.ivr.errors import ConfigError
from lifeline.simulator.cli import DEV_COMMANDS
from lifeline.simulator.cli import register as register_simulator
from lifeline.startup import EMULATOR_ENV, EX_CONFIG, _command_shell, problem_lines

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GOOD = {"TELNYX_API_KEY": "KEY_test_0123456789abcdef",
        "TELNYX_PUBLIC_KEY": "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
        "LIFELINE_AGENTS": "+15550001111", "LIFELINE_ENGINE": "telnyx", "LIFELINE_MONITOR": "off"}
EXAMPLE_KEY = dotenv_values(EMULATOR_ENV)["TELNYX_PUBLIC_KEY"] or ""
EXAMPLE_TOKEN = PLACEHOLDERS["LIFELINE_API_TOKEN"][0][0]  # .env.example's, commented out there
BAD_MENU = 'start: main\ngreeting: Hello\nmenus:\n  main:\n    prompt: Choose\n    options:\n' \
           '      "1": {menu: nowhere}\n'
BAD_RULES = ("rules:\n  - name: calm\n    type: phrase\n    phrases: [help]\n"
             "  - name: upset\n    type: frown\n")


@dataclass
class Run:
    """One finished entry-point process."""

    code: int
    out: str
    err: str
    cwd: Path
    tmp: Path  # its TMPDIR

    @property
    def lines(self) -> list[str]:
        """Every non-empty line it printed."""
        return [line for line in (self.out + self.err).splitlines() if line.strip()]


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELNYX_", "LIFELINE_", "SYMBL_", "FLASK_", "PROMETHEUS_"))
           and k != "DATABASE_URL"}
    return {**env, **extra}


CASES: dict[str, tuple[list[str], dict[str, str], dict[str, str]]] = {
    # name: (argv after the venv's bin/, environment, files to write in the working directory)
    "help": (["flask", "--app", str(ROOT / "app.py"), "--help"], {}, {}),
    "simulate_help": (["flask", "--app", str(ROOT / "app.py"), "simulate", "--help"], {}, {}),
    "simulate_no_env": (["flask", "--app", str(ROOT / "app.py"), "simulate",
                         str(ROOT / "examples/calls/01-calm-balance.yaml")], {}, {}),
    "simulate_bad_agents_no_env": (["flask", "--app", str(ROOT / "app.py"), "simulate",
                                    str(ROOT / "examples/calls/01-calm-balance.yaml")],
                                   {"LIFELINE_AGENTS": "12345"}, {}),
    "evaluate_no_env": (["flask", "--app", str(ROOT / "app.py"), "evaluate", str(ROOT / "examples/labelled")],
                        {}, {}),
    "monitor_mysql": (["flask", "--app", str(ROOT / "app.py"), "monitor", "--once"],
                      {**GOOD, "DATABASE_URL": "mysql://bob:hunter2secret@db.example.com/calls"}, {}),
    "monitor_pg_down": (["flask", "--app", str(ROOT / "app.py"), "monitor", "--once"],
                        {**GOOD, "DATABASE_URL": "postgresql://bob:hunter2secret@127.0.0.1:1/calls"}, {}),
    # A fresh working directory: the default SQLite database there has no schema yet.
    "simulate_fresh": (["flask", "--app", str(ROOT / "app.py"), "--env-file",
                        str(ROOT / "examples/emulator.env"), "simulate", "--speed", "20", "--quiet",
                        str(ROOT / "examples/calls/01-calm-balance.yaml")], {}, {}),
    "simulate_bad_rules": (["flask", "--app", str(ROOT / "app.py"), "--env-file",
                            str(ROOT / "examples/emulator.env"), "simulate",
                            str(ROOT / "examples/calls/01-calm-balance.yaml")],
                           {"LIFELINE_RULES": "rules.yaml"}, {"rules.yaml": BAD_RULES}),
    "db_upgrade_fresh": (["flask", "--app", str(ROOT / "app.py"), "db", "upgrade"], GOOD, {}),
    "db_upgrade_memory": (["flask", "--app", str(ROOT / "app.py"), "db", "upgrade"],
                          {**GOOD, "DATABASE_URL": "memory://"}, {}),
    "monitor_memory": (["flask", "--app", str(ROOT / "app.py"), "monitor", "--once"],
                       {**GOOD, "DATABASE_URL": "memory://"}, {}),
    "gunicorn_bad_outputs": (["gunicorn", "--config", str(ROOT / "gunicorn.conf.py"), "--chdir", str(ROOT),
                              "--bind", "127.0.0.1:0", "app:app"],
                             {**GOOD, "LIFELINE_EVENT_WEBHOOKS": "http://127.0.0.1:9/hook"}, {}),
    "gunicorn_memory": (["gunicorn", "--config", str(ROOT / "gunicorn.conf.py"), "--chdir", str(ROOT),
                         "--bind", "127.0.0.1:0", "app:app"], {**GOOD, "DATABASE_URL": "memory://"}, {}),
    "dial_fresh": (["flask", "--app", str(ROOT / "app.py"), "dial", "+15557770000"],
                   {**GOOD, "LIFELINE_DIAL_FROM": "+15550100000",
                    "TELNYX_CONNECTION_ID": "1494404757140276705",
                    "TELNYX_API_BASE_URL": "http://127.0.0.1:1/v2"}, {}),  # nothing listens there
    "run_bad_menu": (["flask", "--app", str(ROOT / "app.py"), "run", "--port", "1"],
                     {**GOOD, "LIFELINE_IVR": "menu.yaml"}, {"menu.yaml": BAD_MENU}),
    "gunicorn_placeholders": (["gunicorn", "--config", str(ROOT / "gunicorn.conf.py"), "--chdir", str(ROOT),
                               "--bind", "127.0.0.1:0", "app:app"], {}, {".env": "@example"}),
    "gunicorn_bad_rules": (["gunicorn", "--config", str(ROOT / "gunicorn.conf.py"), "--chdir", str(ROOT),
                            "--bind", "127.0.0.1:0", "app:app"],
                           {**GOOD, "LIFELINE_RULES": "rules.yaml"}, {"rules.yaml": BAD_RULES}),
    "gunicorn_without_conf": (["gunicorn", "--config", "none.conf.py", "--chdir", str(ROOT),
                               "--bind", "127.0.0.1:0", "app:app"],
                              {**GOOD, "LIFELINE_AGENTS": "12345"}, {"none.conf.py": "\n"}),
    "script": (["python", str(ROOT / "app.py")], GOOD, {}),
    "gunicorn_published_key": (["gunicorn", "--config", str(ROOT / "gunicorn.conf.py"), "--chdir", str(ROOT),
                                "--workers", "1", "--bind", "127.0.0.1:0", "app:app"],
                               {**GOOD, "DATABASE_URL": "memory://", "TELNYX_PUBLIC_KEY": EXAMPLE_KEY}, {}),
    "gunicorn_example_token": (["gunicorn", "--config", str(ROOT / "gunicorn.conf.py"), "--chdir", str(ROOT),
                                "--workers", "1", "--bind", "127.0.0.1:0", "app:app"],
                               {**GOOD, "DATABASE_URL": "memory://", "LIFELINE_API_TOKEN": EXAMPLE_TOKEN},
                               {}),
    "run_published_key": (["flask", "--app", str(ROOT / "app.py"), "--env-file", str(EMULATOR_ENV), "run",
                           "--port", "1"], {"DATABASE_URL": "memory://"}, {}),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """Run every case at once, each in an empty directory of its own."""
    started, cwds, tmps = {}, {}, {}
    for name, (argv, env, files) in CASES.items():
        cwd = cwds[name] = tmp_path_factory.mktemp(name)
        tmps[name] = tmp_path_factory.mktemp(f"{name}-tmp")
        for filename, text in files.items():
            if text == "@example":
                shutil.copy(ROOT / ".env.example", cwd / filename)
            else:
                (cwd / filename).write_text(text)
        started[name] = subprocess.Popen([str(BIN / argv[0]), *argv[1:]], cwd=cwd,
                                         env=_env({**env, "TMPDIR": str(tmps[name])}),
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = {}
    for name, process in started.items():
        try:
            out, err = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        results[name] = Run(process.returncode, out, err, cwds[name], tmps[name])
    yield results


def _clean(run: Run) -> None:
    """Only problem lines: no traceback, no line twice."""
    assert "Traceback" not in run.out + run.err, run.err
    assert len(run.lines) == len(set(run.lines)), run.lines


def test_flask_help_lists_every_command_without_any_settings(runs: dict[str, Run]) -> None:
    run = runs["help"]
    assert run.code == 0, run.err
    for command in ("simulate", "bench", "listen-bench", "monitor", "run"):
        assert f"  {command} " in run.out
    assert run.err == ""


def test_a_command_help_works_without_any_settings(runs: dict[str, Run]) -> None:
    run = runs["simulate_help"]
    assert run.code == 0, run.err
    assert "Usage: flask simulate [OPTIONS] SCENARIOS..." in run.out
    assert run.err == ""


def test_simulate_without_settings_says_to_use_the_emulator_env_file(runs: dict[str, Run]) -> None:
    run = runs["simulate_no_env"]
    assert run.code == EX_CONFIG
    _clean(run)
    # Only the fix: not the settings the emulator's file supplies, nor the command's own choices.
    assert len(run.lines) == 1 and "--env-file examples/emulator.env" in run.lines[0], run.lines


def test_without_provider_settings_a_mistake_the_emulator_env_would_not_fix_is_shown_with_the_hint(
        runs: dict[str, Run]) -> None:
    run = runs["simulate_bad_agents_no_env"]
    assert run.code == EX_CONFIG
    _clean(run)
    assert len(run.lines) == 2 and "LIFELINE_AGENTS" in run.lines[0] and "12345" in run.lines[0], run.lines
    assert "--env-file examples/emulator.env" in run.lines[1]


def test_evaluate_without_settings_names_evaluate_in_its_hint(runs: dict[str, Run]) -> None:
    run = runs["evaluate_no_env"]
    assert run.code == EX_CONFIG
    assert not [line for line in run.lines if "memory://" in line or "LIFELINE_PUBLIC_URL" in line], run.lines
    assert any("`flask --env-file examples/emulator.env evaluate " in line for line in run.lines), run.lines


def test_a_development_command_with_the_emulator_env_and_a_broken_file_names_only_the_file(
        runs: dict[str, Run]) -> None:
    run = runs["simulate_bad_rules"]
    assert run.code == EX_CONFIG
    _clean(run)
    assert len(run.lines) == 1 and "rules.yaml" in run.lines[0], run.lines
    assert "--env-file" not in run.out + run.err  # it was given; the rules file is what to fix


def test_a_command_that_makes_its_own_database_says_nothing_of_the_configured_ones_schema(
        runs: dict[str, Run]) -> None:
    run = runs["simulate_fresh"]
    assert run.code == 0, run.err
    assert "PASS" in run.out
    assert not [line for line in run.lines if "schema" in line], run.lines
    # It lends the configured settings, not the configured database: no SQLite file is left behind.
    assert sorted(p.name for p in run.cwd.iterdir()) == [], list(run.cwd.iterdir())


def test_flask_db_upgrade_on_a_memory_store_says_there_is_nothing_to_migrate(runs: dict[str, Run]) -> None:
    run = runs["db_upgrade_memory"]
    assert run.code == 1, run.lines
    _clean(run)
    assert run.lines[-1] == ("Error: DATABASE_URL=memory:// has no schema to migrate: it starts empty "
                             "and current in every process"), run.lines


def test_flask_monitor_on_a_memory_store_refuses_since_the_calls_are_in_the_server(
        runs: dict[str, Run]) -> None:
    run = runs["monitor_memory"]
    assert run.code == 1, run.lines
    _clean(run)
    assert run.lines[-1].startswith("Error: DATABASE_URL=memory:// keeps calls inside the serving process"), \
        run.lines


@pytest.mark.parametrize("case", ["gunicorn_placeholders", "gunicorn_bad_rules", "gunicorn_memory"])
def test_a_gunicorn_that_stops_at_start_up_leaves_no_metrics_folder_behind(
        runs: dict[str, Run], case: str) -> None:
    run = runs[case]
    assert run.code != 0, run.lines
    assert list(run.tmp.glob("lifeline-metrics-*")) == []


def test_gunicorn_stops_in_its_master_on_an_outputs_setting_mistake_before_any_worker(
        runs: dict[str, Run]) -> None:
    run = runs["gunicorn_bad_outputs"]
    assert run.code == EX_CONFIG, run.lines
    assert "Booting worker" not in run.out + run.err
    _clean(run)
    assert [line for line in run.lines if line.startswith("error: ")] == [
        line for line in run.lines if "LIFELINE_EVENT_SECRET" in line], run.lines


def test_a_settings_mistake_and_an_outputs_settings_mistake_are_reported_together(tmp_path: Path) -> None:
    from lifeline.environment import load_all_settings
    with pytest.raises(ConfigError) as raised:
        load_all_settings({**GOOD, "LIFELINE_ENGINE": "whisper", "LIFELINE_EVENT_RETRY_BASE_S": "soon"},
                          tmp_path)
    lines = str(raised.value).splitlines()
    assert any(line.startswith("LIFELINE_ENGINE") for line in lines), lines
    assert any(line.startswith("LIFELINE_EVENT_RETRY_BASE_S") for line in lines), lines


def test_gunicorn_with_a_memory_store_and_two_workers_stops_naming_workers_1(runs: dict[str, Run]) -> None:
    run = runs["gunicorn_memory"]
    assert run.code == EX_CONFIG, run.lines
    assert "Booting worker" not in run.out + run.err  # stopped before any worker could take a call
    assert any("start it with --workers 1" in line for line in run.lines), run.lines


def test_flask_db_upgrade_on_a_fresh_database_upgrades_without_telling_to_upgrade(
        runs: dict[str, Run]) -> None:
    run = runs["db_upgrade_fresh"]
    assert run.code == 0, run.err
    assert any(line.startswith("database schema upgraded from none to ") for line in run.lines), run.lines
    assert not [line for line in run.lines if "flask db upgrade" in line], run.lines
    # Each revision's progress is shown; Alembic's notes on its own workings are not.
    assert any("Running upgrade 0001 -> 0002" in line for line in run.lines), run.lines
    assert not [line for line in run.lines if "Context impl" in line or "Will assume" in line], run.lines


def test_a_command_on_the_configured_database_stops_before_acting_when_its_schema_is_not_current(
        runs: dict[str, Run]) -> None:
    run = runs["dial_fresh"]  # before, it dialled first and could not record the call after
    assert run.code == EX_CONFIG, run.lines
    _clean(run)
    [said] = [line for line in run.lines if "alembic" not in line]
    # It names the database it looked at: a mistyped DATABASE_URL means another one than meant.
    assert said.startswith("error: the database schema (sqlite:///") and "instance/lifeline.db" in said
    assert said.endswith(") is empty: run `flask db upgrade`")


def test_an_unsupported_database_scheme_is_named_without_its_password(runs: dict[str, Run]) -> None:
    run = runs["monitor_mysql"]
    assert run.code == EX_CONFIG
    _clean(run)
    assert run.lines == ["error: DATABASE_URL uses mysql:// (db.example.com), which Lifeline does not "
                         "support: the supported schemes are sqlite, postgresql, postgres, "
                         "postgresql+psycopg, memory (e.g. sqlite:///instance/lifeline.db or "
                         "postgresql://user@host/dbname; memory:// for a trial)"]
    assert "hunter2secret" not in run.out + run.err


def test_an_unreachable_database_is_one_line_naming_database_url(runs: dict[str, Run]) -> None:
    run = runs["monitor_pg_down"]
    assert run.code == EX_CONFIG
    _clean(run)
    assert len(run.lines) == 1 and "check DATABASE_URL" in run.lines[0], run.lines
    assert "hunter2secret" not in run.out + run.err


def test_flask_run_with_a_broken_menu_names_the_file_and_line(runs: dict[str, Run]) -> None:
    run = runs["run_bad_menu"]
    assert run.code == EX_CONFIG
    _clean(run)
    assert run.lines == ["error: menu.yaml:7: menus.main.options.1 leads to unknown menu 'nowhere'; "
                         "menus are ['main'] (LIFELINE_IVR)"]


def test_gunicorn_with_the_example_env_prints_each_problem_once_and_stops(runs: dict[str, Run]) -> None:
    run = runs["gunicorn_placeholders"]
    assert run.code == EX_CONFIG
    _clean(run)
    assert [line for line in run.lines if line.startswith("error: ")] == [
        "error: TELNYX_PUBLIC_KEY is not set: copy the base64 public key from the Telnyx portal "
        "(Keys & Credentials > Public Key) into .env"]
    warnings = [line for line in run.lines if line.startswith("warning: ")]
    assert any(w.startswith("warning: TELNYX_API_KEY=KEY0… is the example's placeholder") for w in warnings)
    assert any(w.startswith("warning: LIFELINE_PUBLIC_URL=https://example.ngrok.app") for w in warnings)
    assert len(run.lines) == 1 + len(warnings)  # nothing from gunicorn: no worker was started


def test_gunicorn_with_a_broken_rules_file_names_the_file_and_line(runs: dict[str, Run]) -> None:
    run = runs["gunicorn_bad_rules"]
    assert run.code == EX_CONFIG
    _clean(run)
    assert run.lines == ["error: rules.yaml:6: rules[1] (upset).type 'frown' is unknown; choose one of "
                         "phrase, dtmf, rolling_mean, consecutive_negative, sharp_drop, positive_intent, "
                         "time_in_ivr, intent, strong_negative, frustrated (LIFELINE_RULES)"]


def test_gunicorn_without_lifelines_config_still_stops_with_the_problem(runs: dict[str, Run]) -> None:
    # The worker finds the problem; exit code 3 makes the master stop instead of respawning it.
    run = runs["gunicorn_without_conf"]
    assert run.code != 0
    assert "Traceback" not in run.out + run.err
    problem = "error: LIFELINE_AGENTS has '12345': each agent must be an E.164 number (+15550001111) " \
              "or a SIP URI (sip:agent@example.com)"
    assert problem in run.lines
    assert "Worker failed to boot." in run.err


def test_a_yaml_syntax_error_is_one_line_with_line_and_column(tmp_path: Path) -> None:
    menu = tmp_path / "ivr.yaml"
    menu.write_text("start: main\nmenus:\n  main: [\n")
    with pytest.raises(ConfigError) as caught:
        load_settings_and_menu(menu)
    lines = problem_lines(caught.value)
    assert len(lines) == 1
    assert lines[0].startswith(f"{menu}:4:1: not valid YAML: ") and lines[0].endswith("(LIFELINE_IVR)")


def load_settings_and_menu(menu: Path) -> None:
    """Load a menu file as start-up does."""
    from lifeline.ivr.menu import load_menu

    load_menu(menu)


def test_doubled_commas_and_repeated_agents_are_warned_about_and_skipped(tmp_path: Path) -> None:
    settings = load_settings({**GOOD, "LIFELINE_AGENTS": "+15550001111,,+15550002222,+15550001111"},
                             tmp_path)
    assert settings.agents == ("+15550001111", "+15550002222", "+15550001111")
    assert any("empty entry" in w for w in settings.warnings)
    assert any("+15550001111 more than once" in w for w in settings.warnings)


def test_every_credential_in_the_examples_is_recognised_as_a_placeholder(tmp_path: Path) -> None:
    for example in (ROOT / ".env.example", ROOT / "examples" / "emulator.env"):
        values = {k: v for k, v in dotenv_values(example).items() if v and k in PLACEHOLDERS}
        assert "TELNYX_API_KEY" in values
        settings = load_settings({**GOOD, **values}, tmp_path)
        flagged = {w.split("=")[0] for w in settings.warnings}
        assert flagged == set(values), (example, settings.warnings)
    assert load_settings(GOOD, tmp_path).warnings == ()


def test_app_py_run_as_a_script_says_which_commands_serve_it(runs: dict[str, Run]) -> None:
    run = runs["script"]
    _clean(run)
    assert run.code == 1
    assert "`make dev`" in run.err and "`gunicorn app:app`" in run.err, run.err


@pytest.mark.parametrize(("case", "problem"), [
    ("gunicorn_published_key", "TELNYX_PUBLIC_KEY is the example's key, whose private half is published"),
    ("run_published_key", "TELNYX_PUBLIC_KEY is the example's key, whose private half is published"),
    ("gunicorn_example_token", "LIFELINE_API_TOKEN is the example's value, which anyone who read it knows")])
def test_a_server_with_a_value_the_examples_publish_refuses_to_serve(
        runs: dict[str, Run], case: str, problem: str) -> None:
    run = runs[case]
    _clean(run)
    assert run.code == EX_CONFIG, run.err
    assert f"error: {problem}" in run.err


def test_the_command_shell_lists_exactly_the_real_apps_commands(app: Flask) -> None:
    # `flask --help` shows the shell's commands; a command registered only in create_app
    # would be missing there (register it in lifeline.factory.register_commands).
    shell = _command_shell(register_simulator, DEV_COMMANDS)
    assert set(shell.cli.commands) == set(app.cli.commands)
    assert "lifeline" not in shell.extensions  # listing commands builds no service


def test_a_short_api_token_or_secret_key_is_warned_about_not_refused(tmp_path: Path) -> None:
    settings = load_settings({**GOOD, "LIFELINE_API_TOKEN": "short", "LIFELINE_SECRET_KEY": "x"}, tmp_path)
    assert settings.api_token == "short"
    assert [w.split(" ")[0] for w in settings.warnings] == ["LIFELINE_API_TOKEN", "LIFELINE_SECRET_KEY"]
    assert all("shorter than 16 characters" in w for w in settings.warnings)
    assert load_settings({**GOOD, "LIFELINE_API_TOKEN": "k" * 16}, tmp_path).warnings == ()


def test_a_dtmf_rule_on_a_key_a_menu_offers_is_warned_about_naming_both_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lifeline.startup import check

    monkeypatch.chdir(tmp_path)
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: keys\n    type: dtmf\n    digits: \"02\"\n")
    settings = check({**GOOD, "LIFELINE_RULES": str(rules)})
    shadowed = [w for w in settings.warnings if "acts on key" in w]
    in_file = [w for w in shadowed if "built-in" not in w]
    assert in_file and all(w.startswith(f"{rules}: rule 'keys' acts on key 2, which menu '") for w in in_file)
    assert any("acts on key 2, which menu 'main' offers" in w for w in in_file)
    assert all("drop the key from the rule's digits or from the menu" in w for w in in_file)
    # The menu offered when no agent answers is built in: named by what it is, not by its inner name.
    [built_in] = [w for w in shadowed if "built-in" in w]
    assert "key 2, which the built-in menu offered when no agent answers uses" in built_in
    assert "_after_agents" not in " ".join(shadowed)
    # The shipped rules take only 0, which every menu gives the operator anyway.
    assert not [w for w in check(GOOD).warnings if "acts on key" in w]
    # `flask run` and the other commands print the app's own warnings: the same ones.
    app = create_app({**GOOD, "LIFELINE_RULES": str(rules)}, migrate=True)
    try:
        assert [w for w in app.extensions["lifeline"].settings.warnings if "acts on key" in w] == shadowed
    finally:
        app.extensions["lifeline"].close()


def test_a_server_that_skipped_gunicorn_conf_is_warned_that_the_monitor_and_outputs_are_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from lifeline.startup import entry_app

    monkeypatch.chdir(tmp_path)
    for name, value in GOOD.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delitem(sys.modules, "lifeline.gunicorn_hooks", raising=False)
    with caplog.at_level(logging.WARNING, logger="lifeline"):
        entry_app().extensions["lifeline"].close()
    assert any("served without gunicorn.conf.py" in r.getMessage() for r in caplog.records)
    caplog.clear()
    import lifeline.gunicorn_hooks  # noqa: F401 - what loading gunicorn.conf.py does

    with caplog.at_level(logging.WARNING, logger="lifeline"):
        entry_app().extensions["lifeline"].close()
    assert not any("served without gunicorn.conf.py" in r.getMessage() for r in caplog.records)


def test_a_rules_file_with_no_rule_on_is_warned_about(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lifeline.startup import check

    monkeypatch.chdir(tmp_path)
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: keys, type: dtmf, digits: '0', enabled: false}\n")
    [warning] = [w for w in check({**GOOD, "LIFELINE_RULES": str(rules)}).warnings
                 if "no escalation rule" in w]
    assert warning.startswith(f"{rules}: no escalation rule is on") and "pressing 0" in warning
    assert not [w for w in check(GOOD).warnings if "no escalation rule" in w]


def test_a_misspelt_setting_is_warned_about_with_the_name_it_is_close_to(tmp_path: Path) -> None:
    settings = load_settings({**GOOD, "LIFELINE_AGENT": "+15550009999"}, tmp_path)
    assert settings.warnings == ("LIFELINE_AGENT is not a Lifeline setting and is ignored: did you mean "
                                 "LIFELINE_AGENTS?",)


def test_the_known_settings_are_the_documented_table_and_every_name_the_code_reads() -> None:
    import re

    from lifeline.ivr.config import KNOWN_SETTINGS, OTHERS_SETTINGS
    reference = (ROOT / "docs" / "configuration.md").read_text()
    table = set(re.findall(r"^\| `(LIFELINE_[A-Z0-9_]+)`", reference, re.M))
    read = set()
    for path in (ROOT / "lifeline").rglob("*.py"):
        if "simulator" not in path.relative_to(ROOT / "lifeline").parts:  # the product, not the emulators
            read |= set(re.findall(r"\"(LIFELINE_[A-Z0-9_]+)\"", path.read_text()))
    assert set(KNOWN_SETTINGS) == table == read - OTHERS_SETTINGS  # those, the test suite reads


def test_flask_run_on_a_port_another_server_has_stops_before_its_monitor_starts(tmp_path: Path) -> None:
    import socket
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = subprocess.run([str(BIN / "flask"), "--app", str(ROOT / "app.py"), "run", "--port", str(port)],
                              cwd=tmp_path, env=_env(GOOD), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"error: cannot serve on 127.0.0.1:{port} (Address already in use): another server has it" \
        in done.stderr
    assert "monitor started" not in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_gunicorn_on_a_port_another_server_has_stops_at_once_with_one_line(tmp_path: Path) -> None:
    import socket
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = subprocess.run([str(BIN / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"), "--chdir",
                               str(ROOT), "--workers", "1", "--bind", f"127.0.0.1:{port}", "app:app"],
                              cwd=tmp_path, env=_env({**GOOD, "DATABASE_URL": "memory://"}),
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == EX_CONFIG, done.stderr
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, errors
    assert f"cannot serve on 127.0.0.1:{port} (Address already in use): another server has it" in errors[0]


def test_a_memory_store_is_accepted_with_a_warning_that_it_is_for_one_process(tmp_path: Path) -> None:
    settings = load_settings({**GOOD, "DATABASE_URL": "memory://"}, tmp_path)
    assert settings.database_url == "memory://"
    assert any(w.startswith("DATABASE_URL=memory:// keeps calls in this process only")
               for w in settings.warnings), settings.warnings
    assert not (tmp_path / "lifeline.db").exists()


@pytest.mark.parametrize("url", ["memory:///", "MEMORY://", "memory://x"])
def test_a_memory_store_url_not_written_exactly_is_named_as_such(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({**GOOD, "DATABASE_URL": url}, tmp_path)
    assert str(raised.value) == (f"DATABASE_URL={url!r}: the in-memory store is written exactly memory:// "
                                 "(nothing after it)")
