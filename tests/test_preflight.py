"""`flask check` and the start-up inspection behind it: every independent problem at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from lifeline.preflight import check_command, inspect
from lifeline.startup import EX_CONFIG, _command_shell

GOOD = {"TELNYX_API_KEY": "KEY_test_0123456789abcdef",
        "TELNYX_PUBLIC_KEY": "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
        "LIFELINE_AGENTS": "+15550001111", "LIFELINE_ENGINE": "telnyx"}
BAD_MENU = 'start: main\ngreeting: Hello\nmenus:\n  main:\n    prompt: Choose\n    options:\n' \
           '      "1": {menu: nowhere}\n'


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, so no .env but the test's own is read."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_check(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(check_command, [])
    return result.exit_code, result.output


def test_check_passes_and_says_it_would_serve_the_bundled_examples(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = run_check(GOOD, monkeypatch)
    assert code == 0, out
    assert "warning: LIFELINE_IVR is not set: serving the bundled example menu" in out
    assert out.splitlines()[-1].startswith("settings, menu and rules: no problems, 2 warnings")


def test_an_engine_problem_does_not_hide_malformed_twilio_credentials(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = run_check({"TWILIO_ACCOUNT_SID": "SK0123", "LIFELINE_ENGINE": "telnyx",
                           "LIFELINE_AGENTS": "+15550001111",
                           "LIFELINE_PUBLIC_URL": "https://lifeline.example.com"}, monkeypatch)
    assert code == EX_CONFIG
    assert "error: LIFELINE_ENGINE=telnyx needs Telnyx" in out
    assert "error: TWILIO_AUTH_TOKEN is not set" in out
    assert "error: TWILIO_ACCOUNT_SID='SK0123' is not an Account SID" in out
    assert out.splitlines()[-1].startswith("3 problems, 0 warnings")


def test_a_broken_menu_is_named_even_when_the_settings_fail_too(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / "menu.yaml").write_text(BAD_MENU)
    (workdir / ".env").write_text("LIFELINE_RULE=rules.yaml\n")
    code, out = run_check({**GOOD, "LIFELINE_IVR": "menu.yaml", "LIFELINE_RULE": "rules.yaml",
                           "LIFELINE_AGENTS": "12345"}, monkeypatch)
    assert code == EX_CONFIG
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 3, out
    assert "LIFELINE_RULE in .env is not a Lifeline setting" in errors[0] + errors[1]
    assert any("LIFELINE_AGENTS" in e for e in errors)
    assert any(e.startswith("error: menu.yaml:") and "unknown menu 'nowhere'" in e for e in errors)


def test_a_missing_menu_file_is_said_once(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFELINE_IVR", "nowhere.yaml")
    for name, value in GOOD.items():
        monkeypatch.setenv(name, value)
    found = inspect()
    assert [p.setting for p in found.problems] == ["LIFELINE_IVR"]
    assert found.settings is None


def test_the_command_shell_runs_check_without_building_the_app() -> None:
    assert _command_shell(None, ()).cli.commands["check"] is check_command
