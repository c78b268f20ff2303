"""Voicemail: the caller chose to leave a message after no agent took the call."""

from __future__ import annotations

import logging
import time

from lifeline.ivr.events import encode_client_state
from lifeline.ivr.menu import VOICEMAIL_MAX_S
from lifeline.ivr.recordings import RecordingStatus
from lifeline.ivr.store import CallStatus

from .hangup import HANGUP, HUNG_UP, hang_up, hang_up_again_if_refused
from .machine import Turn

log = logging.getLogger(__name__)
RECORD = "record"  # calls.pending: start recording once the prompt has been said
# A message ends when the caller hangs up (its saved event and the hangup come together) or when
# it reaches VOICEMAIL_MAX_S with the caller still on the line: the monitor thanks such a caller
# and hangs up once the saved message is this old and no hangup has come.
STILL_ON_AFTER_SAVED_S = 3.0
# How long past the longest message the monitor waits for `call.recording.saved` before it hangs
# up a caller still on the line (a lost record_start, or a saved event that never came).
SAVED_GRACE_S = 60.0


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
        hang_up(turn)


def tick(turn: Turn, now: float) -> None:
    """The monitor's tick: never leave a caller in silence. Record once the prompt must have
    ended; thank and hang up a caller still on the line after their message was saved; hang up
    when the thanks' end, or the saved message, never came."""
    call, menu = turn.call, turn.ctx.menu
    waited = now - call.updated_at
    if call.pending == HUNG_UP:
        # The call ends with the provider's call.hangup; the thanks must not be said again.
        hang_up_again_if_refused(turn, now, menu.goodbye_wait_s)
        return
    if call.pending == RECORD:
        if waited > menu.say_wait_s(menu.leave_message):
            log.warning("call %s: the voicemail prompt's end never came; recording", call.call_control_id)
            record(turn)
    elif call.pending == HANGUP:
        if waited > menu.goodbye_wait_s:
            log.warning("call %s: the thanks' end never came; hanging up", call.call_control_id)
            hang_up(turn)
    elif call.recording_saved_at is not None:
        if now - call.recording_saved_at > STILL_ON_AFTER_SAVED_S:
            thank(turn)  # the message reached its longest and the caller is still there
    elif waited > VOICEMAIL_MAX_S + SAVED_GRACE_S:
        log.warning("call %s: no message was ever saved; hanging up", call.call_control_id)
        hang_up(turn)


def thank(turn: Turn) -> None:
    """The message is over and the caller still on: say the goodbye, then hang up (`spoken`).
    Once only: the monitor's tick and Twilio's <Record> action may both find the message over."""
    call, ctx = turn.call, turn.ctx
    if call.pending in (HANGUP, HUNG_UP):
        return
    ctx.tx.update_call(call.call_control_id, pending=HANGUP)
    ctx.send("speak", call.call_control_id, "voicemail:thanks", **ctx.menu.speak(ctx.menu.goodbye))


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
