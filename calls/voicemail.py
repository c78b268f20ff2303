"""Voicemail: the caller chose to leave a message after no agent took the call."""

from __future__ import annotations

from ivr.menu import VOICEMAIL_MAX_S
from ivr.store import CallStatus

from .machine import Turn


def start(turn: Turn) -> None:
    """Ask for the message and record it."""
    ctx, call = turn.ctx, turn.call
    turn.move(CallStatus.VOICEMAIL, menu=None)
    ctx.send("speak", call.call_control_id, f"voicemail:{ctx.event.id}",
             **ctx.menu.speak(ctx.menu.leave_message))
    ctx.send("record_start", call.call_control_id, "voicemail", format="mp3", channels="single",
             play_beep=True, max_length=VOICEMAIL_MAX_S)


def keep_recording(turn: Turn) -> None:
    """Keep where the caller's message is; it often arrives after the hangup."""
    urls = turn.ctx.event.payload.get("recording_urls")
    if not isinstance(urls, dict):
        return
    url = urls.get("mp3") or urls.get("wav")
    if isinstance(url, str):
        turn.ctx.tx.update_call(turn.call.call_control_id, recording_url=url[:1000])
