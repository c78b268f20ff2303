"""A scripted caller: plays one scenario against the emulator and judges the result."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lifeline.ivr.masking import mask_digits

from .app_api import AppApi
from .audio import load_pcmu
from .emulator import Emulator
from .legs import Leg
from .scenario import Scenario

WORDS_PER_S = 2.5
BRIDGE_WAIT_S = 20.0  # scenario time an `agent_says` turn waits for an agent to be bridged
# Real seconds of dead air (no menu open, nothing playing) a caller sits through before hanging
# up, and how long one who has asked for a person holds on for the transfer when the script is
# over. Real, not scenario, seconds at every --speed: what the caller waits for is the app, and
# --speed makes speech and pauses shorter, not the app faster.
PATIENCE_S = 10.0
GRACE_S = 3.0
AGENT_PICKUP_S = 1.0
# Real seconds the provider may take to stop (restart) sending or transcribing the audio after the
# app has accepted a pause (resume): the app tells it through the command outbox, after answering.
LISTENING_FOLLOW_S = 5.0
DEFAULT_FROM = "+15551230001"


@dataclass
class Say:
    """When one `say` turn happened."""

    index: int
    text: str
    start_ms: float
    end_ms: float
    paused: bool = False  # said while a `listening: paused` turn had listening paused


@dataclass
class ListeningStep:
    """One `listening` turn: when the API was asked, and whether the app and the provider followed."""

    number: int  # the turn's number in the script
    paused: bool
    t_ms: float
    done: bool


@dataclass
class CallResult:
    """One played scenario: what happened and whether it met its expectations."""

    scenario: Scenario
    leg: Leg
    speed: float
    says: list[Say] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    abandoned: bool = False
    menu_missed: bool = False  # the caller waited for a menu that never opened
    late: bool = False  # the transfer came after the scenario's latest_say
    heard: list[dict[str, Any]] = field(default_factory=list)
    listening: list[ListeningStep] = field(default_factory=list)
    app_outcome: str | None = None  # the outcome the app recorded (no_agent, voicemail, ...), once read
    why: str = ""  # the rule and reason that put the caller through, or the strongest signal of a miss

    @property
    def transfer_commands(self) -> list[dict[str, Any]]:
        """Transfers the emulator accepted for this call, in order."""
        return list(self.leg.log.transfers)

    @property
    def outcome(self) -> str:
        """transferred | completed | abandoned | failed."""
        if self.leg.log.bridged:
            return "transferred"
        if not self.leg.log.answered or self.leg.log.webhook_failures:
            return "failed"
        return "abandoned" if self.abandoned else "completed"

    @property
    def served(self) -> bool:
        """The app answered and every menu the caller waited for opened."""
        return self.leg.log.answered and not self.menu_missed

    @property
    def passed(self) -> bool:
        """True when every expectation held."""
        return not self.problems


def play(emulator: Emulator, scenario: Scenario, from_: str | None = None,
         api: AppApi | None = None) -> CallResult:
    """Place the call, act out the turns, hang up, and judge; `api` performs `listening` turns."""
    leg = emulator.incoming_call(from_=from_ or scenario.from_ or DEFAULT_FROM, agent=scenario.agent)
    result = CallResult(scenario=scenario, leg=leg, speed=emulator.speed)
    call_log = leg.log
    paused = False
    for number, turn in enumerate(scenario.turns, start=1):
        if leg.ended:
            break
        if turn.kind == "wait_for":
            if not wait_for_menu(emulator, leg, PATIENCE_S) and not leg.ended:
                result.menu_missed = True
                result.problems.append(f"turn {number}: no menu opened within {PATIENCE_S:.0f} s "
                                       "of dead air; the caller hung up")
                break
        elif turn.kind == "press":
            call_log.add({"t_ms": call_log.t_ms(), "kind": "caller", "type": "press",
                          "digits": turn.value})
            emulator.press(leg, turn.value)
        elif turn.kind == "say":
            index = len(result.says) + 1
            start = call_log.t_ms()
            audio = load_pcmu(turn.audio) if turn.audio is not None and leg.streamer else None
            emulator.say(leg, turn.value, max(1.0, len(turn.value.split()) / WORDS_PER_S), audio)
            say = Say(index, turn.value, start, call_log.t_ms(), paused=paused)
            result.says.append(say)
            call_log.add({"t_ms": start, "kind": "caller", "type": "say", "index": index,
                          "text": turn.value, "end_ms": say.end_ms})
        elif turn.kind == "agent_says":
            if not _wait_bridged(emulator, leg):
                result.problems.append(f"turn {number}: no agent was on the line to say {turn.value!r}")
                continue
            time.sleep(emulator.scaled(AGENT_PICKUP_S))  # an agent says hello a moment after picking up
            # Stamped when the agent starts talking: the turn may have waited for the dial and the
            # bridge, and the timeline must show the words after them.
            start = call_log.t_ms()
            audio = load_pcmu(turn.audio) if turn.audio is not None and leg.streamer else None
            emulator.agent_says(leg, turn.value, max(1.0, len(turn.value.split()) / WORDS_PER_S), audio)
            call_log.add({"t_ms": start, "kind": "agent", "type": "agent_says", "text": turn.value,
                          "end_ms": call_log.t_ms()})
        elif turn.kind == "listening":
            paused = turn.value == "paused"
            step, problem = _set_listening(api, leg, number, paused)
            result.listening.append(step)
            if problem is not None:
                result.problems.append(problem)
                break  # what the rest of the script checks depends on a pause (resume) that did not happen
        elif turn.kind == "pause":
            time.sleep(emulator.scaled(float(turn.value)))
        elif turn.kind == "hangup":
            break
    else:  # the script ran out (no `hangup` turn, no early end): hang up, after holding on if asked
        if scenario.expect.transfer is True:
            _hold_on_for_transfer(emulator, leg, PATIENCE_S)
    if not leg.ended:
        result.abandoned = _waiting_for_agent(emulator, leg) or not call_log.answered
        call_log.add({"t_ms": call_log.t_ms(), "kind": "caller", "type": "hangup"})
        emulator.caller_hangs_up(leg)
    _settle(leg)
    _judge(result)
    return result


def _set_listening(api: AppApi | None, leg: Leg, number: int,
                   paused: bool) -> tuple[ListeningStep, str | None]:
    """Pause or resume through the app's API, as a supervisor would, then wait until the provider
    stops (restarts) sending or transcribing the audio; the step, and what went wrong if anything did."""
    call_log = leg.log
    step = ListeningStep(number, paused, call_log.t_ms(), done=False)
    if api is None:
        return step, (f"turn {number}: `listening` turns need the app's API (run the scenario with "
                      "`flask simulate`, or pass Simulation.api to play)")
    _wait_for(lambda: leg.log.answered, leg, PATIENCE_S)  # the app knows the call from its first webhook
    status, detail = api.set_listening(leg.call_control_id, paused)
    call_log.add({"t_ms": step.t_ms, "kind": "api", "type": "listening",
                  "state": "paused" if paused else "resumed", "status": status})
    if status != 200:
        action = "pausing" if paused else "resuming"
        return step, f"turn {number}: {action} listening through the API answered {status}: {detail}"
    followed = _wait_for(lambda: _listening(leg) != paused, leg, LISTENING_FOLLOW_S)
    if leg.ended:
        return step, None  # the call is over: nothing more is said, nor judged, after this turn
    if not followed:
        still = ("still sending or transcribing the audio" if paused
                 else "not sending or transcribing it again")
        return step, (f"turn {number}: the provider was {still} {LISTENING_FOLLOW_S:.0f} s after the app "
                      f"accepted the {'pause' if paused else 'resume'}")
    step.done = True
    return step, None


def _listening(leg: Leg) -> bool:
    """Whether the provider sends the call's audio to the app or transcribes it for the app."""
    return leg.transcribing or leg.streamer is not None


def _wait_for(holds: Callable[[], bool], leg: Leg, timeout_s: float, every_s: float = 0.01) -> bool:
    """Poll until `holds()` (True), or until the call ends or the time is up (then whether it holds)."""
    deadline = time.monotonic() + timeout_s
    while not holds():
        if leg.ended or time.monotonic() >= deadline:
            return holds()
        time.sleep(every_s)
    return True


def judge_listening(result: CallResult) -> None:
    """Once the app's heard lines are attached: nothing said while listening was paused may have
    been heard, and after each resume the app must hear the caller again.

    Each heard caller line is put down to the say it shares most words with, so a paused line the
    app heard split in two, or with a word misheard, still counts as heard."""
    caller_lines = [h for h in result.heard if h.get("party", "caller") == "caller"]
    sources = [(h, _source(h["text"], result.says)) for h in caller_lines]
    leaked = sorted({say.index: say for _, say in sources if say is not None and say.paused}.items())
    for _, say in leaked:
        result.problems.append(f"say #{say.index} came while listening was paused, but the app heard "
                               f"it: {say.text!r}")
    for step in result.listening:
        if step.paused or not step.done:
            continue
        after = [s for s in result.says if s.start_ms >= step.t_ms and not s.paused]
        if after and not any(say is not None and say.start_ms >= step.t_ms and not say.paused
                             for _, say in sources):
            result.problems.append(f"turn {step.number}: listening was resumed, but the app heard nothing "
                                   f"the caller said after it (say #{after[0].index} on)")


def _source(heard: str, says: list[Say]) -> Say | None:
    """The say a heard line most likely came from: most of the line's words are that say's; None
    when no say holds half of them (a line too short or too garbled to put down to one)."""
    words = _words(heard)
    if not words:
        return None
    best, share = None, 0.0
    for say in says:
        found = len(words & _words(say.text)) / len(words)
        # A tie goes to the paused say: a leak must not hide behind a look-alike line.
        if found > share or (found == share and best is not None and say.paused and not best.paused):
            best, share = say, found
    return best if share >= 0.5 else None


def _words(text: str) -> set[str]:
    """The words that tell lines apart: three letters or more, and masked digit runs."""
    return {w for w in _plain(text).split() if len(w) >= 3 or "#" in w}


def _plain(text: str) -> str:
    """Words as the app stores them (digit runs masked), lower case, without punctuation."""
    return " ".join(re.sub(r"[^\w#]+", " ", mask_digits(text).lower()).split())


def far_end_player(emulator: Emulator, scenario: Scenario) -> Callable[[Leg], None]:
    """The far end of a call the app dials out: says and pauses from a scenario, then hangs up.

    It starts once the app listens (at most 5 real seconds after the answer): with the telnyx
    engine the dial asked for transcription, so that is at once; the other engines ask for a media
    stream only after `call.answered`, and on a loaded machine the scenario's first words would
    otherwise fall before it, which a test of the dial-out's pipeline is not about (docs/status.md,
    "Status and known limits", says what is lost on a real line).
    """

    def play_far_end(leg: Leg) -> None:
        deadline = time.monotonic() + 5.0
        while not (leg.transcribing or leg.streamer is not None or leg.ended) and time.monotonic() < deadline:
            time.sleep(0.01)
        for turn in scenario.turns:
            if leg.ended:
                return
            if turn.kind == "say":
                emulator.say(leg, turn.value, max(1.0, len(turn.value.split()) / WORDS_PER_S))
            elif turn.kind == "pause":
                time.sleep(emulator.scaled(float(turn.value)))
            elif turn.kind == "hangup":
                break
        emulator.caller_hangs_up(leg)

    return play_far_end


def wait_for_menu(emulator: Emulator, leg: Leg, patience_s: float) -> bool:
    """Wait until a menu opens; False once the caller has heard `patience_s` real seconds of dead air
    (a prompt playing is not dead air) or the call ended."""
    started = time.monotonic()
    while True:
        if emulator.wait_for_gather(leg, 0.02):
            return True
        if leg.ended:
            return False
        if time.monotonic() - max(started, leg.media_free_at) > patience_s:
            return False


def _hold_on_for_transfer(emulator: Emulator, leg: Leg, patience_s: float) -> None:
    """A caller who asked for a person stays on the line a while for an agent to come on: until one
    is connected, or the transfer was made and no agent is on the way any more (the caller is back
    in a menu). Not merely until the transfer is sent: on Twilio the agent rings after the handoff
    line and hears a whisper before being connected."""
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline and not leg.ended and leg.bridged_with is None:
        if leg.log.transfers and leg.gather is not None and not _agent_on_the_line(emulator, leg):
            return
        time.sleep(0.02)


def _agent_on_the_line(emulator: Emulator, leg: Leg) -> bool:
    agents = [emulator.leg(a) for a in leg.agent_legs]
    return any(a is not None and not a.ended for a in agents)


def _wait_bridged(emulator: Emulator, leg: Leg) -> bool:
    """Wait (scenario time) for an agent to be bridged to the caller."""
    return _wait_for(lambda: leg.bridged_with is not None, leg, emulator.scaled(BRIDGE_WAIT_S), 0.02)


def _waiting_for_agent(emulator: Emulator, leg: Leg) -> bool:
    agents = [emulator.leg(a) for a in leg.agent_legs]
    return any(a is not None and not a.ended and not a.answered for a in agents)


def _settle(leg: Leg) -> None:
    """Let the last webhooks land and the app's reactions to them come back."""
    for _ in range(3):
        leg.log.wait_quiet(10.0)
        time.sleep(0.05)


def _judge(result: CallResult) -> None:
    expect = result.scenario.expect
    transfers = result.transfer_commands
    call_log = result.leg.log
    if not call_log.answered:
        result.problems.append("the app never answered the call")
    if call_log.webhook_failures:
        result.problems.append(f"{call_log.webhook_failures} webhook(s) were not acknowledged with 2xx")
    targets = [t["to"] for t in transfers]
    if len(set(targets)) != len(targets):
        result.problems.append(f"the same agent was sent a transfer twice: {targets}")
    if expect.transfer is True and not transfers:
        result.problems.append("expected a transfer; none was commanded")
    if expect.transfer is False and transfers:
        result.problems.append(f"expected no transfer; one was commanded at {transfers[0]['t_ms']:.0f} ms"
                               f" ({(transfers[0].get('client_state') or {}).get('reason', '')})")
    if not transfers:
        return
    first = transfers[0]["t_ms"]
    if expect.earliest_say is not None:
        say = result.says[expect.earliest_say - 1] if len(result.says) >= expect.earliest_say else None
        if say is None or first < say.start_ms:
            result.problems.append(f"transfer at {first:.0f} ms came before say #{expect.earliest_say} began")
    if expect.latest_say is not None:
        say = result.says[expect.latest_say - 1] if len(result.says) >= expect.latest_say else None
        deadline = say.end_ms + GRACE_S * 1000 / result.speed if say else None
        if deadline is None or first > deadline:
            result.late = True
            result.problems.append(f"transfer at {first:.0f} ms came after say #{expect.latest_say} "
                                   f"ended (+{GRACE_S:.0f} s grace)")
