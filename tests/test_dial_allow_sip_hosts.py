"""Review 39: LIFELINE_DIAL_ALLOW must judge a SIP URI by the host it is sent to, not by its last '@'."""

from __future__ import annotations

import pytest

from lifeline.conversation.dialout import allowed
from lifeline.ivr.config import is_dialable

ALLOW = ("+44", "sip:conf.example.com")


@pytest.mark.parametrize("to", [
    # RFC 3261: the user part ends at the first '@'; what follows ';' and '?' are parameters and
    # headers of a URI whose host is evil.example.net. The check reads the text after the last '@'.
    "sip:x@evil.example.net;p=@conf.example.com",
    "sip:x@evil.example.net?h=@conf.example.com",
    "sips:x@evil.example.net;maddr=10.0.0.1;p=@conf.example.com",
])
def test_a_sip_uri_to_another_host_is_refused_even_when_an_allowed_domain_follows_a_later_at(to: str) -> None:
    assert not is_dialable(to)  # the API refuses it as a destination, allow-list or not
    assert allowed(to, ALLOW) is False


@pytest.mark.parametrize(("to", "expected"), [
    ("sip:agent@conf.example.com", True), ("sips:agent@CONF.example.com;transport=tls", True),
    ("sip:conf.example.com:5061", True), ("sip:agent@other.example.com", False),
    ("sip:agent@conf.example.com.evil.net", False)])
def test_a_sip_uri_is_allowed_by_the_host_it_is_sent_to(to: str, expected: bool) -> None:
    assert allowed(to, ALLOW) is expected
