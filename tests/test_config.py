"""Start-up configuration: every missing or malformed setting is named with its fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lifeline import create_app
from lifeline.environment import load_all_settings, load_env_file
from lifeline.ivr.config import PROJECT_ROOT, bundled_examples, load_settings, settings_source
from lifeline.ivr.errors import ConfigError

GOOD = {"TELNYX_API_KEY": "KEY_x", "TELNYX_PUBLIC_KEY": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        "LIFELINE_AGENTS": "+15550001111", "LIFELINE_ENGINE": "telnyx"}


def test_complete_settings_load(tmp_path: Path) -> None:
    settings = load_settings(GOOD, tmp_path)
    assert settings.agents == ("+15550001111",)
    assert settings.telnyx is not None and settings.telnyx.api_base_url == "https://api.telnyx.com/v2"
    assert settings.database_url == f"sqlite:///{tmp_path / 'lifeline.db'}"


@pytest.mark.parametrize(("value", "days"), [(None, None), ("", None), ("30", 30), (" 365 ", 365)])
def test_retention_is_off_unless_a_number_of_days_is_set(tmp_path: Path, value: str | None,
                                                         days: int | None) -> None:
    source = {**GOOD, "LIFELINE_RETENTION_DAYS": value} if value is not None else GOOD
    assert load_settings(source, tmp_path).retention_days == days


@pytest.mark.parametrize(("name", "value", "named"), [
    ("TELNYX_API_KEY", "", "TELNYX_API_KEY is not set"),
    ("TELNYX_PUBLIC_KEY", "", "TELNYX_PUBLIC_KEY is not set"),
    ("TELNYX_PUBLIC_KEY", "bm90LWEta2V5", "TELNYX_PUBLIC_KEY is not a base64 Ed25519"),
    ("TELNYX_PUBLIC_KEY", "%%%", "TELNYX_PUBLIC_KEY is not a base64 Ed25519"),
    ("LIFELINE_AGENTS", "", "LIFELINE_AGENTS is not set"),
    ("LIFELINE_AGENTS", "+15550001111,5550002222", "'5550002222'"),
    ("LIFELINE_AGENTS", "+1 415 555-0123", "'+1 415 555-0123' (did you mean '+14155550123'?)"),
    ("LIFELINE_AGENTS", "+14155550123;+14155550124", "or a SIP URI (sip:agent@example.com); separate agents "
                                                     "with commas"),
    ("LIFELINE_ENGINE", "whisper", "LIFELINE_ENGINE='whisper' is unknown"),
    ("TELNYX_API_BASE_URL", "api.telnyx.com", "TELNYX_API_BASE_URL"),
    ("LIFELINE_PUBLIC_URL", "example.ngrok.app", "LIFELINE_PUBLIC_URL"),
    ("LIFELINE_IVR", "/nonexistent/ivr.yaml", "LIFELINE_IVR=/nonexistent/ivr.yaml does not exist"),
    ("DATABASE_URL", "mysql://db.example.com/lifeline", "DATABASE_URL uses mysql:// (db.example.com)"),
    ("DATABASE_URL", "mysql://bob:secret@db.example.com:3306/x",
     "DATABASE_URL uses mysql:// (db.example.com:3306)"),
    ("DATABASE_URL", "postgresql://bob:secret@db.example.com:54x2/x",
     "DATABASE_URL has a port that is not a number from 0 to 65535 (db.example.com:54x2)"),
    ("DATABASE_URL", "/tmp/lifeline.db", "DATABASE_URL='/tmp/lifeline.db' is a file path, not a database "
                                         "URL: for SQLite write sqlite:////tmp/lifeline.db"),
    ("DATABASE_URL", "sqlite://instance/x.db", "DATABASE_URL='sqlite://instance/x.db' is not a SQLite URL: "
                                               "write three slashes before a relative path "
                                               "(sqlite:///instance/x.db)"),
    ("LIFELINE_IVR", "/tmp", "LIFELINE_IVR=/tmp is a directory: point LIFELINE_IVR at a YAML file"),
    ("LIFELINE_PUBLIC_URL", "https://abc.ngrok.app/webhooks/telnyx", "LIFELINE_PUBLIC_URL='https://abc.ngrok.app"
                            "/webhooks/telnyx' is a webhook URL: give the base URL only (https://abc.ngrok.app)"),
    ("LIFELINE_PUBLIC_URL", "https://ivr.example.com/lifeline/webhooks/twilio/voice",
     "(https://ivr.example.com/lifeline)"),
    ("LIFELINE_PUBLIC_URL", "https://abc.ngrok.app?x=1", "has a query or fragment: give the base URL only"),
    ("LIFELINE_COMMAND_TIMEOUT", "soon", "LIFELINE_COMMAND_TIMEOUT"),
    ("LIFELINE_COMMAND_HOLD", "-1", "LIFELINE_COMMAND_HOLD='-1' must be a number from 0 to 60"),
    ("LIFELINE_SQLITE_SYNCHRONOUS", "off", "LIFELINE_SQLITE_SYNCHRONOUS='OFF' must be NORMAL"),
    ("LIFELINE_SECOND_HEARING", "1", "LIFELINE_SECOND_HEARING='1' must be off or a speed"),
    ("LIFELINE_SECOND_HEARING", "slow", "LIFELINE_SECOND_HEARING='slow' must be off or a speed"),
    ("LIFELINE_SECOND_HEARING_INTENTS", "Maybe", "LIFELINE_SECOND_HEARING_INTENTS='Maybe' must be on or off"),
    ("LIFELINE_MONITOR", "sometimes",
     "LIFELINE_MONITOR='sometimes' must be on or off (on, the default, runs the sweep"),
    ("LIFELINE_WHISPER_MIRROR_DB", "3", "LIFELINE_WHISPER_MIRROR_DB='3' must be off or a level in dB"),
    ("LIFELINE_WHISPER_MIRROR_DB", "loud", "LIFELINE_WHISPER_MIRROR_DB='loud' must be off or a level"),
    ("LIFELINE_RETENTION_DAYS", "0", "LIFELINE_RETENTION_DAYS='0' must be a whole number of days from 1 "
                                     "to 36500 (calls that ended longer ago are deleted); unset it to keep"),
    ("LIFELINE_RETENTION_DAYS", "30d", "LIFELINE_RETENTION_DAYS='30d' must be a whole number of days"),
    ("LIFELINE_RETENTION_DAYS", "1.5", "LIFELINE_RETENTION_DAYS='1.5' must be a whole number of days"),
    ("LIFELINE_RETENTION_DAYS", "-7", "LIFELINE_RETENTION_DAYS='-7' must be a whole number of days"),
    ("LIFELINE_WHISPER_HOTWORDS", "agent " * 60,
     "LIFELINE_WHISPER_HOTWORDS is 359 characters long: keep it to 300 or fewer"),
])
def test_bad_setting_stops_startup_naming_it(tmp_path: Path, name: str, value: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**GOOD, name: value}, tmp_path)
    assert named in str(caught.value)


def test_every_problem_is_reported_at_once_one_line_each(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        # Telnyx wanted (a key is set) but both keys wrong, and no agents: three problems, three lines
        load_settings({"LIFELINE_ENGINE": "telnyx", "TELNYX_PUBLIC_KEY": "%%%"}, tmp_path)
    lines = str(caught.value).splitlines()
    assert [line.split(" ")[0] for line in lines] == ["TELNYX_API_KEY", "TELNYX_PUBLIC_KEY",
                                                      "LIFELINE_AGENTS"]


def test_local_engine_is_the_default_and_needs_the_public_url(tmp_path: Path) -> None:
    without_engine = {k: v for k, v in GOOD.items() if k != "LIFELINE_ENGINE"}
    with pytest.raises(ConfigError, match="LIFELINE_PUBLIC_URL is not set: the local engine needs it"):
        load_settings(without_engine, tmp_path)
    settings = load_settings({**without_engine, "LIFELINE_PUBLIC_URL": "https://ivr.example.com"}, tmp_path)
    assert settings.engine == "local"
    # A path of its own (the app behind a proxy's prefix) is a base URL too.
    for prefix in ("/ivr", "/webhooks", "/webhooks/lifeline"):
        behind = load_settings({**without_engine, "LIFELINE_PUBLIC_URL": f"https://example.com{prefix}/"},
                               tmp_path)
        assert behind.public_url == f"https://example.com{prefix}"


def test_a_plain_http_public_url_off_this_machine_is_warned_about_and_loopback_is_not(tmp_path: Path) -> None:
    remote = load_settings({**GOOD, "LIFELINE_PUBLIC_URL": "http://ivr.example.com"}, tmp_path)
    assert remote.public_url == "http://ivr.example.com"  # allowed: a proxy may terminate TLS before it
    assert [w for w in remote.warnings if "plain http on ivr.example.com" in w]
    for local in ("http://127.0.0.1:8000", "http://localhost:5000", "https://ivr.example.com"):
        settings = load_settings({**GOOD, "LIFELINE_PUBLIC_URL": local}, tmp_path)
        assert not [w for w in settings.warnings if "plain http" in w], local


def test_postgres_url_uses_the_shipped_driver(tmp_path: Path) -> None:
    settings = load_settings({**GOOD, "DATABASE_URL": "postgresql://u@db/x"}, tmp_path)
    assert settings.database_url == "postgresql+psycopg://u@db/x"


def test_environment_is_read_and_overrides_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in GOOD.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LIFELINE_AGENTS", "sip:desk@example.com")
    assert load_settings(None, tmp_path).agents == ("sip:desk@example.com",)
    assert load_settings({"LIFELINE_AGENTS": "+15550009999"}, tmp_path).agents == ("+15550009999",)


def test_create_app_refuses_a_broken_menu(tmp_path: Path) -> None:
    ivr = tmp_path / "ivr.yaml"
    ivr.write_text("start: main\nmenus: {main: {prompt: hi, options: {'1': {menu: nowhere}}}}\n")
    with pytest.raises(ConfigError) as caught:
        create_app({**GOOD, "LIFELINE_IVR": str(ivr), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert "unknown menu 'nowhere'" in str(caught.value)
    assert str(ivr) in str(caught.value)


@pytest.mark.parametrize(("setting", "pragma"), [(None, 1), ("normal", 1), ("FULL", 2)])
def test_sqlite_flushes_every_commit_to_disk_only_when_asked(tmp_path: Path, setting: str | None,
                                                             pragma: int) -> None:
    from sqlalchemy import text

    config = {**GOOD, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    if setting is not None:
        config["LIFELINE_SQLITE_SYNCHRONOUS"] = setting
    app = create_app(config)
    store = app.extensions["lifeline"].store
    with store.engine.connect() as conn:  # PRAGMA synchronous: 1 is NORMAL, 2 is FULL
        assert conn.execute(text("PRAGMA synchronous")).scalar() == pragma
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


@pytest.mark.parametrize(("setting", "speed"), [(None, 0.9), ("off", None), ("OFF", None), ("0.9", 0.9),
                                               ("1.1", 1.1)])
def test_the_local_engine_hears_each_utterance_a_second_time_slowed_to_0_9_unless_told_otherwise(
        tmp_path: Path, setting: str | None, speed: float | None) -> None:
    extra = {} if setting is None else {"LIFELINE_SECOND_HEARING": setting}
    assert load_settings({**GOOD, **extra}, tmp_path).second_hearing == speed


@pytest.mark.parametrize(("model", "setting", "speed"), [("base", None, None), ("base", "0.9", 0.9),
                                                        ("tiny.en", None, 0.9), ("tiny.en", "off", None)])
def test_only_tiny_en_hears_each_utterance_twice_unless_told_otherwise(
        tmp_path: Path, model: str, setting: str | None, speed: float | None) -> None:
    extra = {"LIFELINE_WHISPER_MODEL": model} | ({} if setting is None
                                                 else {"LIFELINE_SECOND_HEARING": setting})
    assert load_settings({**GOOD, **extra}, tmp_path).second_hearing == speed


@pytest.mark.parametrize(("setting", "counts"), [(None, False), ("off", False), ("ON", True), ("on", True)])
def test_an_intent_heard_only_in_the_second_hearing_counts_only_when_switched_on(
        tmp_path: Path, setting: str | None, counts: bool) -> None:
    extra = {} if setting is None else {"LIFELINE_SECOND_HEARING_INTENTS": setting}
    assert load_settings({**GOOD, **extra}, tmp_path).second_hearing_intents is counts


@pytest.mark.parametrize(("setting", "runs"), [(None, True), ("off", False), ("OFF", False), ("on", True)])
def test_each_worker_runs_the_monitor_unless_switched_off(
        tmp_path: Path, setting: str | None, runs: bool) -> None:
    extra = {} if setting is None else {"LIFELINE_MONITOR": setting}
    assert load_settings({**GOOD, **extra}, tmp_path).monitor is runs


@pytest.mark.parametrize(("model", "name"), [(None, "tiny.en"), ("tiny.en", "tiny.en"), ("base", "base")])
def test_the_whisper_model_is_named_tiny_en_when_none_is_set(
        tmp_path: Path, model: str | None, name: str) -> None:
    extra = {} if model is None else {"LIFELINE_WHISPER_MODEL": model}
    assert load_settings({**GOOD, **extra}, tmp_path).whisper_model_name == name


@pytest.mark.parametrize(("setting", "level"), [(None, 15.0), ("off", None), ("Off", None), ("20", 20.0)])
def test_the_local_engine_keeps_the_phone_bands_mirror_15_db_down_unless_told_otherwise(
        tmp_path: Path, setting: str | None, level: float | None) -> None:
    extra = {} if setting is None else {"LIFELINE_WHISPER_MIRROR_DB": setting}
    assert load_settings({**GOOD, **extra}, tmp_path).whisper_mirror_db == level


@pytest.mark.parametrize(("setting", "words"), [(None, None), ("off", None), ("OFF", None), ("  ", None),
                                               ("agent, supervisor  ombudsman", "agent supervisor ombudsman"),
                                               ("agent " * 49 + "agents", "agent " * 49 + "agents")])  # 300
def test_whisper_hotwords_are_off_unless_set_and_are_read_as_a_list_of_words(
        tmp_path: Path, setting: str | None, words: str | None) -> None:
    extra = {} if setting is None else {"LIFELINE_WHISPER_HOTWORDS": setting}
    assert load_settings({**GOOD, **extra}, tmp_path).whisper_hotwords == words


def test_every_entry_point_reads_the_nearest_env_file_up_from_the_working_directory_as_flask_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("LIFELINE_ENGINE=bogus\nLIFELINE_AGENTS=+15550001111\n")
    (tmp_path / "child").mkdir()
    monkeypatch.chdir(tmp_path / "child")
    environment = {k: v for k, v in os.environ.items() if k not in ("LIFELINE_ENGINE", "LIFELINE_AGENTS")}
    monkeypatch.setattr(os, "environ", environment)  # what the file adds goes away with the test
    monkeypatch.setenv("LIFELINE_AGENTS", "+15559998888")  # the environment wins over the file
    monkeypatch.setenv("FLASK_SKIP_DOTENV", "1")  # skipped, as Flask skips its own
    load_env_file()
    assert "LIFELINE_ENGINE" not in os.environ
    monkeypatch.setenv("FLASK_SKIP_DOTENV", "0")
    load_env_file()
    assert (os.environ["LIFELINE_ENGINE"], os.environ["LIFELINE_AGENTS"]) == ("bogus", "+15559998888")


@pytest.mark.parametrize(("value", "on"), [("on", True), ("TRUE", True), ("yes", True), ("1", True),
                                           ("off", False), ("False", False), ("no", False), ("0", False)])
def test_every_switch_takes_the_usual_spellings_of_on_and_off(tmp_path: Path, value: str, on: bool) -> None:
    from lifeline.conversation.settings import load_output_settings

    assert load_settings({**GOOD, "LIFELINE_MONITOR": value}, tmp_path).monitor is on
    assert load_output_settings({"LIFELINE_SUMMARY_TRANSFERRED_ONLY": value}).summary_transferred_only is on


def test_transcript_settle_takes_zero_but_not_a_negative_or_endless_wait() -> None:
    from lifeline.conversation.settings import load_output_settings
    assert load_output_settings({"LIFELINE_TRANSCRIPT_SETTLE_S": "0"}).transcript_settle_s == 0.0
    assert load_output_settings({}).transcript_settle_s == 60.0
    for bad in ("-1", "nan", "inf", "soon"):
        with pytest.raises(ConfigError, match="LIFELINE_TRANSCRIPT_SETTLE_S must be a number of seconds"):
            load_output_settings({"LIFELINE_TRANSCRIPT_SETTLE_S": bad})


# ----- a Twilio-only deployment -------------------------------------------------------------------

TWILIO_ONLY = {"TWILIO_ACCOUNT_SID": "AC" + "2" * 32, "TWILIO_AUTH_TOKEN": "twilio-test-auth-token",
               "LIFELINE_PUBLIC_URL": "https://ivr.example.com", "LIFELINE_AGENTS": "+15550001111",
               "LIFELINE_ENGINE": "twilio"}


def test_twilios_settings_without_telnyxs_load_with_telnyx_off(tmp_path: Path) -> None:
    settings = load_settings(TWILIO_ONLY, tmp_path)
    assert settings.telnyx is None
    assert settings.provider_secret == "twilio-test-auth-token"  # what the default signing keys come from


def test_a_twilio_only_deployments_auth_token_is_among_the_secrets_kept_out_of_logs(tmp_path: Path) -> None:
    from lifeline.startup import secrets_of
    assert "twilio-test-auth-token" in secrets_of(load_settings(TWILIO_ONLY, tmp_path))


def test_a_telnyx_deployment_derives_its_signing_keys_from_the_api_key_as_before(tmp_path: Path) -> None:
    settings = load_settings({**GOOD, **TWILIO_ONLY, "LIFELINE_ENGINE": "telnyx"}, tmp_path)
    assert settings.telnyx is not None and settings.provider_secret == "KEY_x"


def test_no_provider_at_all_is_one_line_naming_both_ways_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"LIFELINE_AGENTS": "+15550001111", "LIFELINE_ENGINE": "twilio"}, tmp_path)
    [line] = str(caught.value).splitlines()
    assert line.startswith("neither Telnyx nor Twilio is configured: "
                           "set TELNYX_API_KEY and TELNYX_PUBLIC_KEY")
    assert "or TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN" in line


@pytest.mark.parametrize(("telnyx", "named"), [
    ({"TELNYX_API_KEY": "KEY_x"}, "TELNYX_PUBLIC_KEY is not set: copy the base64 public key"),
    ({"TELNYX_PUBLIC_KEY": GOOD["TELNYX_PUBLIC_KEY"]}, "TELNYX_API_KEY is not set: copy your API key"),
])
def test_half_of_telnyxs_settings_beside_twilio_still_names_the_missing_one(
        tmp_path: Path, telnyx: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**TWILIO_ONLY, **telnyx}, tmp_path)
    [line] = str(caught.value).splitlines()
    assert line.startswith(named)


def test_the_telnyx_engine_without_telnyx_is_refused_naming_twilios_engines(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**TWILIO_ONLY, "LIFELINE_ENGINE": "telnyx"}, tmp_path)
    [line] = str(caught.value).splitlines()
    assert line.startswith("LIFELINE_ENGINE=telnyx needs Telnyx, which is not configured")
    assert "choose local" in line and "or twilio" in line
    for engine in ("local", "twilio"):
        assert load_settings({**TWILIO_ONLY, "LIFELINE_ENGINE": engine}, tmp_path).engine == engine


def test_twilio_only_without_a_public_url_says_the_local_engine_tells_twilio(tmp_path: Path) -> None:
    without_url = {k: v for k, v in TWILIO_ONLY.items()
                   if k not in ("LIFELINE_PUBLIC_URL", "LIFELINE_ENGINE")}
    with pytest.raises(ConfigError, match="the local engine needs it to tell Twilio where to stream"):
        load_settings(without_url, tmp_path)


def test_a_recordings_folder_that_cannot_be_made_is_warned_about_unless_a_bucket_keeps_them(
        tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    where = str(tmp_path / "a-file" / "recordings")
    settings = load_settings({**GOOD, "LIFELINE_RECORDINGS_DIR": where}, tmp_path)
    assert (f"LIFELINE_RECORDINGS_DIR={where} cannot be made: {tmp_path / 'a-file'} is a file, not a folder, "
            "so no voicemail could be kept; point LIFELINE_RECORDINGS_DIR at a folder this service can "
            "write") in settings.warnings
    with_bucket = load_settings({**GOOD, "LIFELINE_RECORDINGS_DIR": where,
                                 "LIFELINE_RECORDINGS_BUCKET": "s3://voicemail/calls"}, tmp_path)
    assert not [w for w in with_bucket.warnings if "LIFELINE_RECORDINGS_DIR" in w]
    assert not (tmp_path / "recordings").exists()  # checked, not made
    assert load_settings(GOOD, tmp_path).recordings_dir == tmp_path / "recordings"


def test_a_near_miss_of_database_url_is_named_not_left_to_fall_back_to_sqlite(tmp_path: Path) -> None:
    settings = load_settings({**GOOD, "DATABASE_URI": "postgresql://app@db.example.com/calls"}, tmp_path)
    assert settings.database_url.startswith("sqlite:///")  # the default, as before...
    assert ("DATABASE_URI is not a Lifeline setting and is ignored: did you mean DATABASE_URL?"
            in settings.warnings)  # ...but said
    unrelated = load_settings({**GOOD, "DATABASE_URL_TEST": "x", "TELNYX_API_BASE_URL": "http://x/v2"},
                              tmp_path)
    assert not [w for w in unrelated.warnings if "did you mean" in w]


@pytest.mark.parametrize(("name", "meant"), [
    ("LIFELINE_MENU", "did you mean LIFELINE_IVR?"),
    ("LIFELINE_IVR_FILE", "did you mean LIFELINE_IVR?"),
    ("LIFELINE_RULE", "did you mean LIFELINE_RULES?"),
    ("TWILIO_SID", "did you mean TWILIO_ACCOUNT_SID?"),
    ("TWILIO_TOKEN", "did you mean TWILIO_AUTH_TOKEN?"),
    ("TELNYX_APIKEY", "did you mean TELNYX_API_KEY?"),
    ("SYMBL_SECRET", "did you mean SYMBL_APP_SECRET?"),
    ("LIFELINE_FOO", "the settings it reads are listed in docs/configuration.md"),
])
def test_an_unknown_name_under_lifelines_prefixes_is_named_with_what_it_likely_meant(
        tmp_path: Path, name: str, meant: str) -> None:
    settings = load_settings({**GOOD, name: "x"}, tmp_path)
    assert [w for w in settings.warnings if name in w] == [
        f"{name} is not a Lifeline setting and is ignored: {meant}"]


def test_an_unknown_name_in_the_env_file_stops_start_up_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**GOOD, "LIFELINE_MENU": "mine/ivr.yaml"}, tmp_path, file_keys={"LIFELINE_MENU"})
    assert str(caught.value) == ("LIFELINE_MENU in .env is not a Lifeline setting, so it would be ignored: "
                                 "did you mean LIFELINE_IVR? (rename or remove it)")


def test_the_env_file_the_entry_points_read_decides_which_unknown_names_are_problems(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("TWILIO_SID=AC00\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TWILIO_SID", "AC00")  # as the entry points load it
    monkeypatch.setenv("LIFELINE_FOO", "1")  # from the environment alone
    with pytest.raises(ConfigError) as caught:
        load_all_settings(GOOD, tmp_path)
    assert [p.setting for p in caught.value.problems] == ["TWILIO_SID"]
    assert ("LIFELINE_FOO is not a Lifeline setting and is ignored: the settings it reads are listed in "
            "docs/configuration.md") in caught.value.warnings


@pytest.mark.parametrize("name", ["TWILIO_EDGE", "TWILIO_REGION", "TWILIO_API_KEY", "TELNYX_LOG",
                                  "TELNYX_BASE_URL", "LIFELINE_TEST_POSTGRES_URL"])
def test_names_the_provider_sdks_or_the_test_suite_read_are_left_alone(tmp_path: Path, name: str) -> None:
    assert not [w for w in load_settings({**GOOD, name: "x"}, tmp_path, file_keys={name}).warnings
                if name in w]


def test_a_server_says_when_it_serves_the_bundled_example_menu_and_rules(tmp_path: Path) -> None:
    settings = load_settings(GOOD, tmp_path)
    assert bundled_examples(settings, settings_source(GOOD)) == [
        "LIFELINE_IVR is not set: serving the bundled example menu (Lifeline Bank's) from examples/ivr.yaml; "
        "set LIFELINE_IVR to your own file",
        "LIFELINE_RULES is not set: serving the bundled example escalation rules from examples/rules.yaml; "
        "set LIFELINE_RULES to your own file"]
    chosen = {**GOOD, "LIFELINE_IVR": str(PROJECT_ROOT / "examples/ivr.yaml"),
              "LIFELINE_RULES": str(PROJECT_ROOT / "examples/rules.yaml")}
    assert bundled_examples(load_settings(chosen, tmp_path), settings_source(chosen)) == []
