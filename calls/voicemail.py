"""Voicemail: the caller chose to leave a message after no agent took the call."""

from __future__ import annotations

import time

from ivr.events import encode_client_state
from ivr.menu import VOICEMAIL_MAX_S
from ivr.recordings import RecordingStatus
from ivr.store import CallStatus

from .machine import Turn

RECORD = "record"  # calls.pending: start recording once the prompt has been said


def start(turn: Turn) -> None:
    """Ask for the message; the recording starts when the prompt has been said (`record`)."""
    ctx, call = turn.ctx, turn.call
    # record_start begins at once (with its beep): sent together with the prompt, the beep and
    # the recording would start while "leave a message after the tone" is still playing.
    turn.move(CallStatus.VOICEMAIL, menu=None, pending=RECORD)
    ctx.send("speak", call.call_control_id, f"voicemail:{ctx.event.id}",
             **ctx.menu.speak(ctx.menu.leave_message))


def record(turn: Turn) -> None:
    """The prompt has been said: beep and record, with a client_state that finds this call again."""
    ctx, call = turn.ctx, turn.call
    if call.pending != RECORD:
        return
    ctx.tx.update_call(call.call_control_id, pending=None)
    # call.recording.saved carries no call_control_id; the client_state names the call.
    ctx.send("record_start", call.call_control_id, "voicemail", format="wav", channels="single",
             play_beep=True, max_length=VOICEMAIL_MAX_S,
             client_state=encode_client_state({"role": "caller", "call": call.call_control_id}))


def keep_recording(turn: Turn) -> None:
    """Note the caller's message and fetch its audio after commit (the URL lives 10 minutes)."""
    urls = turn.ctx.event.payload.get("recording_urls")
    if not isinstance(urls, dict):
        return
    url = urls.get("wav") or urls.get("mp3")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return
    ccid = turn.call.call_control_id
    turn.ctx.tx.update_call(ccid, recording_url=url[:1000], recording_status=RecordingStatus.PENDING,
                            recording_saved_at=time.time())
    keeper = turn.svc.recordings
    if keeper is not None:
        turn.ctx.after_commit(lambda: keeper.fetch_later(ccid))
