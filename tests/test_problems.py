"""Start-up problems are records: where one is printed comes from its file and key path, never
from its words, so a problem reworded keeps its file:line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lifeline.environment import load_all_settings
from lifeline.ivr.config import load_settings
from lifeline.ivr.errors import ConfigError, Problem
from lifeline.ivr.menu import load_menu
from lifeline.startup import problem_lines
from lifeline.transfer.rules import load_rules

MENU = """\
greeting: Hello.
start: main
menus:
  main:
    prompt: Press 1 for info, 2 for more.
    options:
      "1": {say: Info here.}
      "2": {menu: nowhere}
"""
RULES = """\
rules:
  - name: operator
    type: dtmf
  - name: upset
    type: frown
"""
GOOD = {"TELNYX_API_KEY": "KEY_x", "TELNYX_PUBLIC_KEY": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        "LIFELINE_AGENTS": "+15550001111", "LIFELINE_ENGINE": "telnyx"}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def only_problem(error: pytest.ExceptionInfo[ConfigError]) -> Problem:
    [problem] = error.value.problems
    return problem


def test_a_menu_problem_keeps_its_file_and_line_when_reworded(tmp_path: Path) -> None:
    menu = write(tmp_path, "ivr.yaml", MENU)
    with pytest.raises(ConfigError) as caught:
        load_menu(menu)
    problem = only_problem(caught)
    assert problem_lines(ConfigError([problem])) == [
        f"{menu}:8: menus.main.options.2 leads to unknown menu 'nowhere'; menus are ['main'] (LIFELINE_IVR)"]
    reworded = replace(problem, message="key 2 opens a menu this file does not have")
    assert problem_lines(ConfigError([reworded])) == [
        f"{menu}:8: key 2 opens a menu this file does not have (LIFELINE_IVR)"]


def test_a_rules_problem_keeps_its_file_and_line_when_reworded(tmp_path: Path) -> None:
    rules = write(tmp_path, "rules.yaml", RULES)
    with pytest.raises(ConfigError) as caught:
        load_rules(rules)
    problem = only_problem(caught)
    assert (problem.setting, problem.path, problem.keys) == ("LIFELINE_RULES", rules, ("rules", 1, "type"))
    reworded = replace(problem, message="the second rule's type is not one Lifeline has")
    assert problem_lines(ConfigError([reworded])) == [
        f"{rules}:5: the second rule's type is not one Lifeline has (LIFELINE_RULES)"]


def test_any_words_are_printed_at_the_line_their_keys_lead_to_and_only_keys_give_a_line(
        tmp_path: Path) -> None:
    menu = write(tmp_path, "ivr.yaml", MENU)
    at_key = Problem("whatever the loader says", "LIFELINE_IVR", menu, ("menus", "main", "options", "1"))
    assert problem_lines(ConfigError([at_key])) == [f"{menu}:7: whatever the loader says (LIFELINE_IVR)"]
    # Words that look like a key path locate nothing: they are never read for one.
    unplaced = Problem("menus.main.options.1 is wrong", "LIFELINE_IVR", menu)
    assert problem_lines(ConfigError([unplaced])) == [f"{menu}: menus.main.options.1 is wrong (LIFELINE_IVR)"]


def test_a_yaml_syntax_error_keeps_the_parsers_line_and_column_printed_and_in_words(tmp_path: Path) -> None:
    menu = write(tmp_path, "ivr.yaml", "start: main\nmenus:\n  main: [\n")
    with pytest.raises(ConfigError) as caught:
        load_menu(menu)
    problem = only_problem(caught)
    assert (problem.line, problem.column) == (4, 1)
    assert str(caught.value).startswith(f"LIFELINE_IVR={menu}: not valid YAML at line 4, column 1: ")
    [line] = problem_lines(caught.value)
    assert line.startswith(f"{menu}:4:1: not valid YAML: ") and line.endswith(" (LIFELINE_IVR)")


def test_a_config_errors_text_is_one_line_per_problem_naming_a_file_by_its_setting() -> None:
    error = ConfigError([Problem("LIFELINE_AGENTS is not set", "LIFELINE_AGENTS"),
                         Problem("`handoff` must be a text", "LIFELINE_RULES", Path("rules.yaml"),
                                 ("handoff",))])
    assert str(error) == "LIFELINE_AGENTS is not set\nLIFELINE_RULES=rules.yaml: `handoff` must be a text"


def test_a_config_error_made_from_text_keeps_it_and_holds_one_unplaced_problem_a_line() -> None:
    error = ConfigError("first problem\n  second problem\n")
    assert str(error) == "first problem\n  second problem\n"
    assert error.problems == [Problem("first problem"), Problem("second problem")]


@pytest.mark.parametrize(("name", "value"), [
    ("TELNYX_PUBLIC_KEY", "bm90LWEta2V5"), ("LIFELINE_AGENTS", "12345"), ("LIFELINE_ENGINE", "whisper"),
    ("DATABASE_URL", "mysql://db.example.com/x"), ("LIFELINE_WHISPER_THREADS", "99"),
    ("LIFELINE_TRANSCRIPTION_ENGINE", "Nobody"), ("LIFELINE_FEED_POLL_S", "soon"),
])
def test_a_settings_problem_names_the_setting_at_fault(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_all_settings({**GOOD, name: value}, tmp_path)
    assert only_problem(caught).setting == name


def test_no_provider_at_all_is_a_problem_of_telnyxs_key_which_the_emulator_env_file_sets(
        tmp_path: Path) -> None:
    # The development commands offer examples/emulator.env for problems of Telnyx's credentials.
    with pytest.raises(ConfigError) as caught:
        load_settings({"LIFELINE_AGENTS": "+15550001111", "LIFELINE_ENGINE": "telnyx"}, tmp_path)
    problem = only_problem(caught)
    assert problem.message.startswith("neither Telnyx nor Twilio is configured")
    assert problem.setting == "TELNYX_API_KEY"


def test_a_menu_setting_naming_no_file_is_printed_as_the_settings_problem(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError) as caught:
        load_settings({**GOOD, "LIFELINE_IVR": str(missing)}, tmp_path)
    [line] = problem_lines(caught.value)
    assert line.startswith(f"LIFELINE_IVR={missing} does not exist: point LIFELINE_IVR at a YAML file ")
