"""Which base-heard lines may teach an intent (corpus/keep_heard.py)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

from .conftest import load_script

Reader = Callable[[str], dict[str, float]]


@pytest.fixture(scope="module")
def keep() -> ModuleType:
    return load_script("corpus/keep_heard.py")


@pytest.fixture(scope="module")
def heard() -> ModuleType:
    return load_script("corpus/make_heard.py")


def strongest(words: dict[str, float], plain: Callable[[str], str]) -> Reader:
    """A stand-in model: the intent's probability is the highest weight of any word present."""
    def read(text: str) -> dict[str, float]:
        present = {plain(t) for t in text.split()}
        return {"leave_or_cancel": max([p for w, p in words.items() if w in present], default=0.05)}
    return read


def summed(words: dict[str, float], plain: Callable[[str], str]) -> Reader:
    """A stand-in model that needs several words together: their weights add up."""
    def read(text: str) -> dict[str, float]:
        present = {plain(t) for t in text.split()}
        return {"leave_or_cancel": min(1.0, 0.05 + sum(p for w, p in words.items() if w in present))}
    return read


def test_leaving_out_a_word_drops_every_token_of_it_and_keeps_the_rest(keep: ModuleType,
                                                                         heard: ModuleType) -> None:
    assert keep.without("Close it, close my account now.", "close", heard._plain) == "it, my account now."


def test_the_words_whose_absence_lowers_the_intent_enough_carry_it(
        keep: ModuleType, heard: ModuleType) -> None:
    read = strongest({"close": 0.9, "account": 0.6}, heard._plain)
    carrying = keep.carrying_words("Please close my account today", "leave_or_cancel", read,
                                   ["account", "close", "today"], 0.2, heard._plain)
    assert carrying == {"close"}


def test_every_word_the_intent_needs_carries_it(keep: ModuleType, heard: ModuleType) -> None:
    read = summed({"switching": 0.45, "supplier": 0.45}, heard._plain)
    carrying = keep.carrying_words("I'm switching supplier next week", "leave_or_cancel", read,
                                   ["im", "next", "supplier", "switching", "week"], 0.2, heard._plain)
    assert carrying == {"supplier", "switching"}


def test_when_no_single_word_lowers_it_enough_the_biggest_drop_carries_it(keep: ModuleType,
                                                                           heard: ModuleType) -> None:
    # either word alone keeps the intent high: no word drops it by 0.2, so the larger drop is chosen
    read = strongest({"cancel": 0.9, "leaving": 0.85}, heard._plain)
    carrying = keep.carrying_words("cancel it, I'm leaving", "leave_or_cancel", read,
                                   ["cancel", "im", "leaving"], 0.2, heard._plain)
    assert carrying == {"cancel"}


def test_a_line_the_model_does_not_read_as_the_intent_has_no_carrying_words(keep: ModuleType,
                                                                             heard: ModuleType) -> None:
    read = strongest({"close": 0.3}, heard._plain)
    assert keep.carrying_words("close my account", "leave_or_cancel", read,
                               ["account", "close"], 0.2, heard._plain) is None


LINE = "Please close my account before the end of the month."  # content: close account before end month


def judge(keep: ModuleType, heard: ModuleType, original: str, heard_as: str, intents: set[str]) -> str:
    read = strongest({"close": 0.9, "account": 0.3}, heard._plain)
    return keep.verdict(original, heard_as, frozenset(intents), read, heard._plain, heard._STOP,  # type: ignore[no-any-return]
                        heard.content_recall, 0.75, 0.2)


def test_a_heard_line_that_kept_the_carrying_word_is_kept(keep: ModuleType, heard: ModuleType) -> None:
    assert judge(keep, heard, LINE, "please close my account before the end of the mouth",
                 {"leave_or_cancel"}) == keep.KEPT


def test_a_heard_line_that_lost_the_carrying_word_is_left_out(keep: ModuleType, heard: ModuleType) -> None:
    # four of five content words kept, but not the one the intent rests on
    assert judge(keep, heard, LINE, "please clone my account before the end of the month",
                 {"leave_or_cancel"}) == keep.LOST


def test_a_line_without_intents_needs_only_its_content_words(keep: ModuleType, heard: ModuleType) -> None:
    assert judge(keep, heard, LINE, "please clone my account before the end of the month",
                 set()) == keep.KEPT


def test_a_line_that_lost_too_many_content_words_is_left_out_first(
        keep: ModuleType, heard: ModuleType) -> None:
    assert judge(keep, heard, LINE, "lease clone my count before the end of the mouth",
                 {"leave_or_cancel"}) == keep.GARBLED


def test_an_intent_the_model_does_not_read_in_the_written_line_leaves_it_out(keep: ModuleType,
                                                                             heard: ModuleType) -> None:
    assert judge(keep, heard, "Please shut my account today", "please shut my account today",
                 {"leave_or_cancel"}) == keep.UNREAD
