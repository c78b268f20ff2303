"""Voicemail: the caller chose to leave a message after no agent took the call."""

from __future__ import annotations

import logging
import time

from ivr.events import encode_client_state
from ivr.menu import VOICEMAIL_MAX_S
from ivr.recordings import RecordingStatus
from ivr.store import CallStatus

from .machine import Turn

log = logging.getLogger(__name__)
RECORD = "record"  # calls.pending: start recording once the prompt has been said
HANGUP = "hangup"  # calls.pending: hang up once the thanks has been said
# How long past the longest message the monitor waits for `call.recording.saved` before it hangs
# up a caller still on the line (a lost record_start, or a saved event that never came).
SAVED_GRACE_S = 60.0
PROMPT_WAIT_S = 30.0  # "leave your message after the tone" is said well within this


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


def spoken(turn: Turn) -> None:
    """A prompt has been said: after "leave your message", record; after the thanks, hang up."""
    if turn.call.pending == RECORD:
        record(turn)
    elif turn.call.pending == HANGUP:
        _hang_up(turn)


def saved(turn: Turn) -> None:
    """The message is saved while the caller is still on the line (it reached its longest):
    keep it, thank them and hang up, instead of leaving them on a silent line."""
    keep_recording(turn)
    ctx, call = turn.ctx, turn.call
    if call.pending is None:  # recording had started; a second saved event changes nothing
        ctx.tx.update_call(call.call_control_id, pending=HANGUP)
        ctx.send("speak", call.call_control_id, f"voicemail:thanks:{ctx.event.id}",
                 **ctx.menu.speak(ctx.menu.goodbye))


def tick(turn: Turn, now: float) -> None:
    """The monitor's tick: a prompt's end, a saved message or the thanks' end that never came
    moves the call on (record anyway, or hang up) instead of leaving the caller in silence."""
    call, menu = turn.call, turn.ctx.menu
    waited = now - call.updated_at
    if call.pending == RECORD and waited > PROMPT_WAIT_S:
        log.warning("call %s: the voicemail prompt did not end within %.0f s; recording", call.call_control_id,
                    PROMPT_WAIT_S)
        record(turn)
    elif (call.pending == HANGUP and waited > menu.goodbye_wait_s) or (
            call.pending is None and waited > VOICEMAIL_MAX_S + SAVED_GRACE_S):
        log.warning("call %s: voicemail over without its %s; hanging up", call.call_control_id,
                    "thanks ending" if call.pending == HANGUP else "recording saved")
        _hang_up(turn)


def _hang_up(turn: Turn) -> None:
    turn.ctx.tx.update_call(turn.call.call_control_id, pending=None)
    turn.ctx.send("hangup", turn.call.call_control_id, "hangup")


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
