"""The IVR menu file: checked at start-up, consulted without side effects."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeline.ivr.errors import ConfigError
from lifeline.ivr.menu import (
    AFTER_AGENTS,
    GOODBYE_MARGIN_S,
    GOODBYE_WORDS_PER_S,
    Option,
    load_menu,
    telnyx_voice_problem,
)

from .conftest import ROOT

BASE = """
greeting: Hello.
start: main
menus:
  main:
    prompt: Press 1 for info, 2 for more.
    options:
      "1": {say: Info here.}
      "2": {menu: more}
  more:
    prompt: Press star to go back.
    options:
      "*": {menu: main}
      "9": {goodbye: true}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ivr.yaml"
    path.write_text(text)
    return path


def test_example_menu_loads() -> None:
    menu = load_menu(ROOT / "examples" / "ivr.yaml")
    assert set(menu.nodes) == {"main", "balance", "cards", AFTER_AGENTS}
    assert menu.option("main", "3") == Option("menu", target="cards")


def test_zero_means_operator_in_every_menu_even_when_unlisted(tmp_path: Path) -> None:
    menu = load_menu(write(tmp_path, BASE))
    assert menu.operator("more") == Option("transfer", text="caller pressed 0 for the operator")
    assert menu.gather("more")["valid_digits"] == "*09"


def test_the_after_agents_menu_is_an_ordinary_node_without_the_operator(tmp_path: Path) -> None:
    menu = load_menu(write(tmp_path, BASE))
    params = menu.gather(AFTER_AGENTS, lead_in="Sorry.")
    assert params["valid_digits"] == "12"
    assert params["payload"] == f"Sorry. {menu.offer_message}"
    assert menu.option(AFTER_AGENTS, "1") == Option("menu", target="main")
    assert menu.option(AFTER_AGENTS, "2") == Option("voicemail")
    assert menu.option(AFTER_AGENTS, "0") is None


def test_a_file_cannot_take_the_after_agents_name(tmp_path: Path) -> None:
    reserved = f"  {AFTER_AGENTS}:\n    prompt: x\n    options: {{\"1\": {{goodbye: true}}}}\n"
    text = BASE.replace("menus:\n", f"menus:\n{reserved}", 1)
    with pytest.raises(ConfigError, match="reserved"):
        load_menu(write(tmp_path, text))


def test_gather_asks_for_one_key_and_leaves_retries_to_lifeline(tmp_path: Path) -> None:
    params = load_menu(write(tmp_path, BASE)).gather("main", lead_in="Welcome.")
    assert params["payload"] == "Welcome. Press 1 for info, 2 for more."
    assert (params["minimum_digits"], params["maximum_digits"], params["maximum_tries"]) == (1, 1, 1)


@pytest.mark.parametrize(("change", "message"), [
    (("start: main", "start: nowhere"), "`start: nowhere` names no menu"),
    (('"2": {menu: more}', '"2": {menu: less}'), "leads to unknown menu 'less'"),
    (('"2": {menu: more}', '"2": {say: hi}'), "menus ['more'] cannot be reached"),
    (('"9": {goodbye: true}', '"0": {menu: main}'), "options.0 must be a transfer"),
    (('"9": {goodbye: true}', '"x": {goodbye: true}'), "key 'x' must be one of 0-9"),
    (('"9": {goodbye: true}', '"12": {goodbye: true}'), "key '12' must be one of 0-9"),
    (('"9": {goodbye: true}', '"01": {menu: main}'), "key '01' must be one of 0-9"),
    (('"9": {goodbye: true}', '"9": {goodbye: false}'), "options.9.goodbye must be true"),
    (('"9": {goodbye: true}', '"9": {goodbye: true, then: main}'), "options.9.then follows only"),
    (('"9": {goodbye: true}', '"9": {goodbye: true, menu: main}'), "exactly one of"),
    (('"1": {say: Info here.}', '"1": {say: ""}'), "options.1.say must be a non-empty text"),
    (("greeting: Hello.", "greeting: Hello.\nretries: 9"), "`retries` must be a whole number"),
    (("greeting: Hello.", "greting: Hello."), "unknown keys ['greting']"),
    (("prompt: Press star to go back.", "prompt: ''"), "menus.more.prompt must be a non-empty text"),
    (("prompt: Press star to go back.", "promt: Press star to go back."),
     "menus.more.promt is not a menu key: did you mean `prompt`?"),
    (("prompt: Press star to go back.", "prompt: Press star to go back.\n    timeout_ms: 3000"),
     "menus.more.timeout_ms is not a menu key: `timeout_ms` is set once for the whole file, at the "
     "top level"),
    (("prompt: Press star to go back.", "prompt: Press star to go back.\n    colour: blue"),
     "menus.more.colour is not a menu key: a menu has only `prompt` and `options`"),
    (('"1": {say: Info here.}', '"1": {pause_listening: Paused., then: mian}'),
     "leads to unknown menu 'mian'"),
    (('"1": {say: Info here.}', '"1": {resume_listening: ""}'),
     "options.1.resume_listening must be a non-empty"),
    (('"1": {say: Info here.}', '"1": {say: Info here., then: hangup}'),
     "leads to unknown menu 'hangup'; menus are ['main', 'more']; to say goodbye and hang up, write "
     "`then: goodbye`"),
    (('"9": {goodbye: true}', '"9": {menu: end}'), "to say goodbye and hang up, write `goodbye: true`"),
    (('"9": {goodbye: true}', '"9": {transfer: true}'),
     "options.9.transfer must be a non-empty text: the reason the agent is given"),
])
def test_menu_mistakes_stop_startup_with_the_key_named(tmp_path: Path, change: tuple[str, str],
                                                       message: str) -> None:
    path = write(tmp_path, BASE.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_menu(path)
    assert message in str(caught.value)
    assert f"LIFELINE_IVR={path}" in str(caught.value)


def test_the_agents_whisper_says_the_rules_words_without_its_figures(tmp_path: Path) -> None:
    menu = load_menu(write(tmp_path, BASE))
    assert menu.whisper_for("caller asked for a person (wants_person 1.00)") == \
        "Caller coming through: caller asked for a person."
    assert menu.whisper_for("") == "Caller coming through: no reason was given."
    own = load_menu(write(tmp_path, BASE + "whisper: 'Brightside caller, {reason}. Be kind.'\n"))
    assert own.whisper_for("caller is angry (P(angry) 0.91)") == \
        "Brightside caller, caller is angry. Be kind."
    with pytest.raises(ConfigError, match=r"`whisper` may hold \{reason\}"):
        load_menu(write(tmp_path, BASE + "whisper: 'Caller: {rule}'\n"))


def test_a_refused_option_is_one_problem_not_also_a_menu_it_no_longer_reaches(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_menu(write(tmp_path, BASE.replace('"2": {menu: more}', '"2": {menu: more, say: hi}')))
    assert "exactly one of" in str(caught.value) and "cannot be reached" not in str(caught.value)


def test_unreadable_or_invalid_yaml_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        load_menu(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="the key '9' is given twice"):
        load_menu(write(tmp_path,
                        BASE.replace('"9": {goodbye: true}',
                                     '"9": {goodbye: true}\n      "9": {menu: more}')))
    # A merge and a key overriding what it merged are not repeats.
    merged = BASE.replace('      "*": {menu: main}', '      <<: {"*": {menu: more}}\n      "*": {menu: main}')
    assert load_menu(write(tmp_path, merged)).nodes["more"].options["*"].target == "main"
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(BASE.replace("Hello.", "Caf\u00e9.").encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_menu(latin1)
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_menu(write(tmp_path, "menus: [\n"))


HASH_MENU = BASE.replace('"9": {goodbye: true}', '"#": {goodbye: true}')


def test_a_hash_key_is_sent_as_input_not_as_the_terminating_digit(tmp_path: Path) -> None:
    menu = load_menu(write(tmp_path, HASH_MENU))
    assert menu.gather("more")["terminating_digit"] == ""
    assert "terminating_digit" not in menu.gather("main")  # no `#` key: Telnyx's default is fine


def test_a_language_telnyx_would_refuse_stops_startup(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="LIFELINE_IVR=") as caught:
        load_menu(write(tmp_path, f"language: en-XX\n{BASE}"))
    assert "`language: en-XX` is not a Telnyx speech language: choose one of" in str(caught.value)


@pytest.mark.parametrize(("voice", "named"), [
    ("Joanna", "`voice: Joanna` is not a Telnyx voice: write <Provider>.<Model>.<VoiceId>"),
    ("Acme.Fast.Bob", "`voice: Acme.Fast.Bob` is not a Telnyx voice"),
    ("AWS.Polly.Joanna-Neural", None), ("Azure.en-US-AvaMultilingualNeural", None),
    ("Telnyx.KokoroTTS.af", None), ("female", None),
])
def test_a_voice_is_one_telnyx_speaks_when_its_provider_is_among_the_sdks(
        voice: str, named: str | None) -> None:
    problem = telnyx_voice_problem(voice)
    if named is None:
        assert problem is None
    else:
        assert problem is not None and problem.startswith(named)


def test_the_menu_file_is_read_whatever_provider_its_voice_is_for(tmp_path: Path) -> None:
    # Which voices work is the deployment's to say (lifeline/providers/voices.py), not the file's.
    for voice in ("AWS.Polly.Joanna-Neural", "Polly.Joanna-Neural", "Google.en-US-Standard-C"):
        assert load_menu(write(tmp_path, f"voice: {voice}\nlanguage: en-GB\n{BASE}")).voice == voice


def test_pause_and_resume_keys_say_their_text_and_lead_on_like_say(tmp_path: Path) -> None:
    menu = load_menu(write(tmp_path, BASE.replace('"1": {say: Info here.}',
                                                  '"1": {pause_listening: Not listening now., then: more}')))
    assert menu.option("main", "1") == Option("pause_listening", target="more", text="Not listening now.")


def test_the_goodbye_wait_covers_the_longest_text_a_goodbye_can_say(tmp_path: Path) -> None:
    plain = load_menu(write(tmp_path, f"goodbye: Bye now.\n{BASE}"))
    long_lead_in = " ".join(["word"] * 40)
    led = load_menu(write(tmp_path, "goodbye: Bye now.\n" + BASE.replace(
        '"1": {say: Info here.}', f'"1": {{say: {long_lead_in}, then: goodbye}}')))
    # 42 words at 2 words a second (slower than speech), plus the margin for Telnyx's own delays.
    assert led.goodbye_wait_s == GOODBYE_MARGIN_S + 42 / GOODBYE_WORDS_PER_S
    assert plain.goodbye_wait_s == GOODBYE_MARGIN_S + 2 / GOODBYE_WORDS_PER_S


def test_a_prompt_too_long_to_say_with_its_lead_in_stops_startup_naming_both(tmp_path: Path) -> None:
    long_info = "x" * 2990
    # Alone each fits; said together ("Info here." then the main prompt again) they do not.
    too_long = BASE.replace("{say: Info here.}", "{say: " + long_info + "}")
    with pytest.raises(ConfigError) as refused:
        load_menu(write(tmp_path, too_long))
    assert "menus.main.options.1 + menus.main.prompt is 3020 characters when said" in str(refused.value)
    assert "menus.main.options.1 + menus.more" not in str(refused.value)  # never said before `more`
    fits = BASE.replace("{say: Info here.}", "{say: " + "x" * 2960 + "}")
    assert load_menu(write(tmp_path, fits)).nodes["main"].options["1"].text == "x" * 2960


def test_the_no_agent_apology_said_before_any_menu_counts_in_its_length(tmp_path: Path) -> None:
    # Said before the menu the caller is in when a transfer was already spent (a second 0).
    long_menu = BASE.replace("prompt: Press star to go back.", "prompt: " + "y" * 2960)
    with pytest.raises(ConfigError, match=r"no_agent \+ menus.more.prompt is \d+ characters when said"):
        load_menu(write(tmp_path, long_menu))
