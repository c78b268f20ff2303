"""Review 39: an IPv6 address that embeds an inside IPv4 address is judged by it, SIIT's too."""

from __future__ import annotations

import pytest

from lifeline.ivr.recordings import RecordingFetchError, check_url


@pytest.mark.parametrize("address", [
    "::ffff:0:7f00:1",    # RFC 2765 IPv4-translated (SIIT, ::ffff:0:0:0/96): 127.0.0.1
    "::ffff:0:a9fe:a9fe",  # ... 169.254.169.254, a cloud's metadata service
])
def test_a_recording_host_resolving_to_an_ipv4_translated_inside_address_is_refused(address: str) -> None:
    with pytest.raises(RecordingFetchError):
        check_url("https://rec.example/x.wav", resolve=lambda host, port: [address])
