"""Twilio settings: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_API_BASE_URL (read by ivr.config)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lifeline.ivr.config import Settings
from lifeline.ivr.errors import ConfigError, Problem

_ACCOUNT_SID = re.compile(r"^AC[0-9a-f]{32}$")
DEFAULT_API_BASE_URL = "https://api.twilio.com"
DEFAULT_LANGUAGE = "en-US"  # Twilio's own default for <Transcription languageCode>


@dataclass(frozen=True)
class TwilioSettings:
    """What Lifeline needs to answer a Twilio number."""

    account_sid: str
    auth_token: str
    api_base_url: str
    public_url: str
    media_base: str | None = None  # LIFELINE_MEDIA_URL, when media is served apart from the webhooks
    transcription_language: str = DEFAULT_LANGUAGE  # <Transcription languageCode>: a whole locale

    def url(self, path: str) -> str:
        """The public URL of one of our endpoints, as Twilio requests (and signs) it."""
        return f"{self.public_url}{path}"

    @property
    def media_url(self) -> str:
        """wss:// base of the media endpoint Twilio streams to."""
        if self.media_base:
            return self.media_base
        return self.public_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)


def twilio_settings(settings: Settings) -> TwilioSettings | None:
    """Twilio's settings when TWILIO_AUTH_TOKEN is set, else None (Twilio not in use)."""
    extra = settings.twilio
    token = extra.get("TWILIO_AUTH_TOKEN")
    sid = extra.get("TWILIO_ACCOUNT_SID")
    if not token and not sid:
        return None
    problems: list[Problem] = []
    if not token:
        problems.append(Problem(
            "TWILIO_AUTH_TOKEN is not set: copy the Auth Token from the Twilio Console "
            "(Account > API keys & tokens) into .env; it verifies Twilio's webhooks",
            "TWILIO_AUTH_TOKEN"))
    if not sid:
        problems.append(Problem(
            "TWILIO_ACCOUNT_SID is not set: copy the Account SID (AC followed by 32 hex "
            "digits) from the Twilio Console into .env",
            "TWILIO_ACCOUNT_SID"))
    elif not _ACCOUNT_SID.match(sid):
        # An API Key's SID (SK...) is the usual slip: it sits beside the Account SID in the Console.
        what = (" (SK... is an API Key's SID; the Account SID starts with AC)"
                if sid.upper().startswith("SK") else "")
        problems.append(Problem(
            f"TWILIO_ACCOUNT_SID={sid!r} is not an Account SID (AC followed by 32 hex "
            f"digits){what}: copy it from the Twilio Console",
            "TWILIO_ACCOUNT_SID"))
    base_url = (extra.get("TWILIO_API_BASE_URL") or DEFAULT_API_BASE_URL).rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        problems.append(Problem(
            f"TWILIO_API_BASE_URL={base_url!r} is not an http(s) URL: leave it unset "
            "for Twilio, or give the emulator's URL",
            "TWILIO_API_BASE_URL"))
    if not settings.public_url:
        problems.append(Problem(
            "LIFELINE_PUBLIC_URL is not set: Twilio signs each webhook with the URL it "
            "requested, and Lifeline gives Twilio its callback URLs from it (your https "
            "ngrok or load-balancer URL)",
            "LIFELINE_PUBLIC_URL"))
    if problems:
        raise ConfigError(problems)
    assert token and sid and settings.public_url
    return TwilioSettings(account_sid=sid, auth_token=token, api_base_url=base_url,
                          public_url=settings.public_url, media_base=settings.media_url,
                          transcription_language=transcription_language(settings.transcription_language))


def transcription_language(written: str | None) -> str:
    """LIFELINE_TRANSCRIPTION_LANGUAGE as Twilio's languageCode: the whole BCP-47 tag as written
    (es-US stays es-US: Telnyx's engines are given its primary subtag, Twilio is not); a bare `en`,
    Telnyx's default, is Twilio's en-US."""
    code = (written or "").strip().replace("_", "-")
    return DEFAULT_LANGUAGE if code in ("", "en") else code
