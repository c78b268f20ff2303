"""Which base-heard lines may teach an intent (corpus/keep_heard.py)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from .conftest import load_script


def script() -> ModuleType:
    return load_script("corpus/keep_heard.py")


def plain(token: str) -> str:
    return load_script("corpus/make_heard.py")._plain(token)  # type: ignore[no-any-return]


def reader(words: dict[str, float]) -> Callable[[str], dict[str, float]]:
    """A stand-in model: the intent's probability is the highest weight of any word present."""
    def read(text: str) -> dict[str, float]:
        present = {plain(t) for t in text.split()}
        return {"leave_or_cancel": max([p for w, p in words.items() if w in present], default=0.05)}
    return read


def test_leaving_out_a_word_drops_every_token_of_it_and_keeps_the_rest() -> None:
    assert script().without("Close it, close my account now.", "close", plain) == "it, my account now."


def test_the_words_whose_absence_lowers_the_intent_enough_carry_it() -> None:
    read = reader({"close": 0.9, "account": 0.6})
    carrying = script().carrying_words("Please close my account today", "leave_or_cancel", read,
                                       ["account", "close", "today"], 0.2, plain)
    assert carrying == {"close"}


def test_when_no_single_word_lowers_it_enough_the_biggest_drop_carries_it() -> None:
    # either word alone keeps the intent high: no word drops it by 0.2, so the larger drop is chosen
    read = reader({"cancel": 0.9, "leaving": 0.85})
    carrying = script().carrying_words("cancel it, I'm leaving", "leave_or_cancel", read,
                                       ["cancel", "im", "leaving"], 0.2, plain)
    assert carrying == {"cancel"}


def test_a_line_the_model_does_not_read_as_the_intent_has_no_carrying_words() -> None:
    read = reader({"close": 0.3})
    assert script().carrying_words("close my account", "leave_or_cancel", read,
                                   ["account", "close"], 0.2, plain) is None
