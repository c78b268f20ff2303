"""The offline listening path: G.711, frames, reordering, endpointing, Whisper, the media socket."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import socket
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from lifeline.insight.endpoint import UtteranceCutter
from lifeline.insight.frames import MalformedFrame, ReorderBuffer, parse_frame
from lifeline.insight.g711 import ALAW_TO_PCM, ULAW_TO_PCM, decode, encode_ulaw
from lifeline.insight.local import MediaTokens
from lifeline.insight.media import MediaSession
from lifeline.insight.whisper import Transcriber, is_decoder_loop, slowed, upsample_8k_to_16k
from lifeline.ivr.store import CallStatus
from lifeline.server import _pump
from lifeline.simulator.audio import load_pcmu
from lifeline.simulator.runner import Simulation

from .conftest import AGENTS, ROOT, wait_until
from .test_call_flow import accepted, settle, store
from .ws_client import close_code, frame_header, handshake, send_text

AUDIO = ROOT / "examples" / "calls" / "audio"


# ----- G.711 ---------------------------------------------------------------------------------

def test_g711_decodes_to_the_itu_reference_values() -> None:
    assert ULAW_TO_PCM[[0x00, 0x80, 0xFF, 0x7F, 0x0F, 0xF0]].tolist() == [-32124, 32124, 0, 0, -16764, 120]
    assert ALAW_TO_PCM[[0xD5, 0x55, 0x2A, 0xAA, 0x80, 0x00]].tolist() == [8, -8, -32256, 32256, 5504, -5504]
    assert decode(b"\x00\xff", "pcmu").tolist() == [-32124, 0]


def test_mulaw_encoding_round_trips_every_code() -> None:
    codes = np.arange(256, dtype=np.uint8)
    again = np.frombuffer(encode_ulaw(ULAW_TO_PCM[codes]), dtype=np.uint8)
    assert (ULAW_TO_PCM[again] == ULAW_TO_PCM[codes]).all()


def test_unsupported_encoding_is_named() -> None:
    with pytest.raises(ValueError, match="OPUS"):
        decode(b"\x00", "OPUS")


# ----- frames ----------------------------------------------------------------------------------

def frame(event: str, **parts: object) -> str:
    return json.dumps({"event": event, "sequence_number": "3", "stream_id": "s-1", **parts})


def test_start_frame_carries_the_codec() -> None:
    parsed = parse_frame(frame("start", start={"call_control_id": "v3:x", "media_format": {
        "encoding": "PCMA", "sample_rate": 8000, "channels": 1}}))
    assert (parsed.call_control_id, parsed.encoding, parsed.sample_rate, parsed.sequence) == ("v3:x", "PCMA",
                                                                                              8000, 3)


def test_media_frame_payload_is_decoded() -> None:
    parsed = parse_frame(frame("media", media={"track": "inbound", "chunk": "7", "timestamp": "140",
                                               "payload": base64.b64encode(b"\x01\x02").decode()}))
    assert (parsed.payload, parsed.chunk, parsed.track) == (b"\x01\x02", 7, "inbound")


@pytest.mark.parametrize(("raw", "message"), [
    ("{not json", "not JSON"),
    ('{"no": "event"}', "no `event`"),
    ('{"event": "media", "media": {"payload": "@@not base64@@"}}', "not base64"),
    ('{"event": "media"}', "without media.payload"),
    ("x" * 70000, "larger than 64 KiB"),
])
def test_bad_frames_are_refused_with_a_reason(raw: str, message: str) -> None:
    with pytest.raises(MalformedFrame, match=message):
        parse_frame(raw)


def test_unknown_frame_events_parse_without_error() -> None:
    assert parse_frame(frame("mark", mark={"name": "x"})).event == "mark"


def test_reorder_buffer_puts_frames_back_in_order() -> None:
    buffer = ReorderBuffer(depth=3)
    out = buffer.push(1, b"a") + buffer.push(3, b"c") + buffer.push(2, b"b") + buffer.push(4, b"d")
    assert out == [b"a", b"b", b"c", b"d"]


def test_reorder_buffer_fills_a_lost_frame_with_silence_and_drops_it_if_late() -> None:
    buffer = ReorderBuffer(depth=2, silence=b"_")
    out = buffer.push(1, b"a")
    for chunk in (3, 4, 5):
        out += buffer.push(chunk, bytes([96 + chunk]))
    assert out == [b"a", b"_", b"c", b"d", b"e"]
    assert buffer.push(2, b"b") == [] and (buffer.late, buffer.filled) == (1, 1)


# ----- endpointing and recognition ----------------------------------------------------------------

def pcm(name: str) -> np.ndarray:
    return decode(load_pcmu(AUDIO / name), "PCMU")


def test_endpointer_finds_each_utterance_of_a_recorded_call() -> None:
    gap = np.zeros(int(8000 * 1.2), dtype=np.int16)
    parts = [pcm(f"04-slow-burn-{n}.wav") for n in range(1, 5)]
    call = np.concatenate([x for p in parts for x in (p, gap)])
    cutter = UtteranceCutter()
    utterances = [u for i in range(0, len(call), 160) for u in cutter.feed(call[i:i + 160]) if u.final]
    assert len(utterances) == 4
    starts = [u.start_s for u in utterances]
    assert starts == sorted(starts)
    durations = [len(p) / 8000 for p in parts]
    for utterance, duration in zip(utterances, durations, strict=True):
        assert 0.5 * duration < utterance.end_s - utterance.start_s < duration + 0.5


def test_cutter_flushes_speech_that_never_paused() -> None:
    cutter = UtteranceCutter()
    speech = pcm("02-asks-for-human-1.wav")[:-2400]  # cut before the trailing silence
    assert [u for i in range(0, len(speech), 160) for u in cutter.feed(speech[i:i + 160]) if u.final] == []
    last = cutter.close()
    assert last is not None and last.final


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    model = Transcriber(None)
    model.load()
    return model


def test_whisper_transcribes_a_committed_recording(transcriber: Transcriber) -> None:
    heard = transcriber.transcribe(pcm("02-asks-for-human-1.wav"))
    assert "real person" in heard.text.lower()
    assert 0 < heard.confidence <= 1


def test_whisper_keeps_the_beams_readings_best_first_and_one_when_decoding_greedily(
        transcriber: Transcriber) -> None:
    heard = transcriber.transcribe(pcm("02-asks-for-human-1.wav"))
    assert 2 <= len(heard.readings) <= 5  # the beam's five, less any caught in a decoder loop
    assert not any(is_decoder_loop(r.text) for r in heard.readings)
    assert heard.readings[0].text == heard.text
    assert heard.readings[0].confidence == pytest.approx(heard.confidence, abs=0.001)
    chances = [r.confidence for r in heard.readings]
    assert chances == sorted(chances, reverse=True) and all(0 < p <= 1 for p in chances)
    assert transcriber.transcribe(pcm("02-asks-for-human-1.wav"), fast=True).readings == ()
    assert {r.hearing for r in heard.readings} == {0}  # heard once unless a second hearing is asked for


def test_a_second_hearing_adds_the_slowed_audios_readings_after_the_first_and_not_under_load() -> None:
    twice = Transcriber(None, second_hearing=0.9)
    audio = pcm("02-asks-for-human-1.wav")
    once = Transcriber(None).transcribe(audio)
    heard = twice.transcribe(audio)
    assert (heard.text, heard.confidence) == (once.text, once.confidence)  # the first hearing leads
    assert heard.readings[:len(once.readings)] == once.readings
    second = heard.readings[len(once.readings):]
    assert 1 <= len(second) <= 5 and {r.hearing for r in second} == {1}
    assert "person" in second[0].text.lower()
    assert twice.transcribe(audio, fast=True).readings == ()  # load shedding hears once, greedily


def test_slowing_an_utterance_stretches_it_by_the_speed() -> None:
    ramp = np.arange(0, 9000, 10, dtype=np.int16)  # 900 samples rising by 10 each
    stretched = slowed(ramp, 0.9)
    assert len(stretched) == 1000 and stretched.dtype == np.int16
    assert np.allclose(stretched[:999], np.arange(999) * 9, atol=1)  # the same rise over 1/0.9 the time


def _level_db(samples: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(20 * np.log10(spectrum[round(hz * len(samples) / 16000)] + 1e-12))


def test_upsampling_leaves_4_to_8_khz_empty_unless_asked_to_keep_the_bands_mirror_at_a_level() -> None:
    tone = np.sin(2 * np.pi * 1000 * np.arange(8000) / 8000).astype(np.float32) * 0.5  # 1 kHz
    clean = upsample_8k_to_16k(tone)
    folded = upsample_8k_to_16k(tone, 15.0)
    assert _level_db(clean, 7000) < _level_db(clean, 1000) - 60  # the image is filtered out
    assert _level_db(folded, 7000) - _level_db(folded, 1000) == pytest.approx(-15.0, abs=0.5)
    assert _level_db(folded, 1000) == pytest.approx(_level_db(clean, 1000), abs=0.1)  # the band is kept
    assert folded.dtype == np.float32 and len(folded) == 2 * len(tone)


def test_the_transcriber_hears_the_phone_band_with_its_mirror_as_configured() -> None:
    audio = pcm("02-asks-for-human-1.wav")
    heard = Transcriber(None, mirror_db=15.0).transcribe(audio)
    assert "real person" in heard.text.lower()
    plain = Transcriber(None).transcribe(audio)
    assert heard.readings != plain.readings  # the decoder heard different features


# ----- the media socket -----------------------------------------------------------------------------

def test_media_tokens_are_per_call_signed_and_short_lived() -> None:
    tokens = MediaTokens("secret")
    token = tokens.issue("v3:call-1")
    assert tokens.verify(token) == "v3:call-1"
    assert MediaTokens("other secret").verify(token) is None
    assert tokens.verify(token[:-2] + "xx") is None
    assert tokens.verify("") is None
    time.sleep(1.1)
    assert tokens.verify(token, max_age_s=0) is None


@pytest.fixture
def local() -> Iterator[Simulation]:
    with Simulation({"LIFELINE_AGENTS": AGENTS}, engine="local", speed=1) as sim:
        yield sim


@pytest.mark.parametrize("token", ["", "forged", "expired"])
def test_media_socket_refuses_a_bad_token_before_the_handshake(local: Simulation, token: str) -> None:
    engine = local.app.extensions["lifeline"].engine  # type: ignore[union-attr]
    if token == "expired":
        token = engine.tokens.issue("v3:x")
        engine.token_max_age_s = 0
        time.sleep(1.1)
    url = local.emulator.webhook_url.replace("/webhooks/telnyx", f"/media/telnyx?token={token}")  # type: ignore[union-attr]
    response = httpx.get(url, headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                       "Sec-WebSocket-Version": "13",
                                       "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode()})
    assert response.status_code == 403
    assert response.json()["error"]["status"] == 403


def _port(sim: Simulation) -> int:
    return int(sim.emulator.webhook_url.rsplit(":", 1)[1].split("/", 1)[0])  # type: ignore[union-attr]


def _live_leg(sim: Simulation) -> tuple[str, MediaTokens]:
    leg = sim.emulator.incoming_call()
    assert sim.emulator.wait_for_gather(leg, 5)
    return leg.call_control_id, sim.app.extensions["lifeline"].engine.tokens  # type: ignore[union-attr]


def test_a_media_token_opens_one_socket_only(local: Simulation) -> None:
    ccid, tokens = _live_leg(local)
    path = f"/media/telnyx?token={tokens.issue(ccid)}"
    first, conn = handshake(_port(local), path)
    second, again = handshake(_port(local), path)
    assert (first, second) == (101, 403)
    conn.close()
    again.close()


def test_a_plain_request_to_the_media_socket_is_426_naming_the_upgrade_and_the_token_still_opens_it(
        local: Simulation) -> None:
    ccid, tokens = _live_leg(local)
    path = f"/media/telnyx?token={tokens.issue(ccid)}"
    plain = httpx.get(f"http://127.0.0.1:{_port(local)}{path}")
    assert plain.status_code == 426 and plain.headers["Upgrade"] == "websocket"
    assert "Upgrade: websocket" in plain.json()["error"]["message"]
    status, conn = handshake(_port(local), path)  # the token still opens the call's one socket
    assert status == 101
    conn.close()


def test_a_media_token_of_an_ended_call_opens_nothing(local: Simulation) -> None:
    leg = local.emulator.incoming_call()
    assert local.emulator.wait_for_gather(leg, 5)
    tokens = local.app.extensions["lifeline"].engine.tokens  # type: ignore[union-attr]
    token = tokens.issue(leg.call_control_id)  # issued while the call was live
    local.emulator.caller_hangs_up(leg)
    assert wait_until(lambda: store(local).get_call(leg.call_control_id).status == CallStatus.ENDED)
    status, conn = handshake(_port(local), f"/media/telnyx?token={token}")
    assert status == 403
    conn.close()


def test_the_media_socket_is_closed_when_its_call_ends(local: Simulation) -> None:
    leg = local.emulator.incoming_call()
    assert local.emulator.wait_for_gather(leg, 5)
    tokens = local.app.extensions["lifeline"].engine.tokens  # type: ignore[union-attr]
    status, conn = handshake(_port(local), f"/media/telnyx?token={tokens.issue(leg.call_control_id)}")
    assert status == 101
    assert close_code(conn, 0.5) is None  # open while the call is
    local.emulator.caller_hangs_up(leg)
    assert close_code(conn, 15) == 1000
    conn.close()


def test_closing_the_streams_ends_every_open_stream_quietly(local: Simulation) -> None:
    leg = local.emulator.incoming_call()
    assert local.emulator.wait_for_gather(leg, 5)
    lifeline = local.app.extensions["lifeline"]  # type: ignore[union-attr]
    assert wait_until(lambda: lifeline.streams.count() == 1, 10)  # the caller's audio, streaming
    lifeline.streams.close()  # what Lifeline.close() does before it stops the engine
    assert wait_until(lambda: lifeline.streams.count() == 0, 10)
    call = lifeline.store.get_call(leg.call_control_id)
    assert call is not None and call.listening != "lost"  # closing is not a fault to report


def _start_stream(sim: Simulation, ccid: str, tokens: MediaTokens, stream_id: str) -> socket.socket:
    status, conn = handshake(_port(sim), f"/media/telnyx?token={tokens.issue(ccid)}")
    assert status == 101
    send_text(conn, _start(ccid, stream_id))
    return conn


def _start(ccid: str, stream_id: str) -> str:
    return frame("start", stream_id=stream_id, start={"call_control_id": ccid, "media_format": {
        "encoding": "PCMU", "sample_rate": 8000, "channels": 1}})


def _media(stream_id: str, chunk: int, payload: bytes) -> str:
    return frame("media", stream_id=stream_id, media={
        "track": "inbound", "chunk": str(chunk), "payload": base64.b64encode(payload).decode()})


def _end_the_call_under_the_stream(sim: Simulation, ccid: str) -> None:
    """The hangup webhook lands and the stream watcher sees it, while frames are still unread."""
    leg = sim.emulator.leg(ccid)
    assert leg is not None
    sim.emulator.caller_hangs_up(leg)
    assert wait_until(lambda: store(sim).get_call(ccid).status == CallStatus.ENDED)
    sim.app.extensions["media_streams"].check()


def test_words_sent_before_the_hangup_but_read_after_it_are_still_heard(local: Simulation) -> None:
    ccid, tokens = _live_leg(local)
    conn = _start_stream(local, ccid, tokens, "s-last-words")
    _end_the_call_under_the_stream(local, ccid)
    speech = load_pcmu(AUDIO / "02-asks-for-human-1.wav")
    frames = [speech[i:i + 160] for i in range(0, len(speech), 160)]
    conn.sendall(b"".join(frame_header(len(t)) + t for t in
                          (_media("s-last-words", n, f).encode() for n, f in enumerate(frames, 1))))
    send_text(conn, frame("stop", stream_id="s-last-words"))
    assert close_code(conn, 15) is not None
    conn.close()
    assert wait_until(lambda: bool(store(local).messages(ccid)), timeout=20)
    [message] = store(local).messages(ccid)
    assert "real person" in message["text"].lower()


def test_a_stream_that_runs_on_after_its_call_ended_is_closed_when_the_grace_runs_out(
        local: Simulation) -> None:
    local.app.extensions["media_streams"].call_end_grace_s = 1.0
    ccid, tokens = _live_leg(local)
    conn = _start_stream(local, ccid, tokens, "s-zombie")
    _end_the_call_under_the_stream(local, ccid)
    ended = time.monotonic()
    conn.settimeout(0.02)
    closed_after: float | None = None
    for chunk in itertools.count(1):  # a provider that keeps sending silence and never says stop
        if closed_after is not None or time.monotonic() - ended > 10:
            break
        try:
            send_text(conn, _media("s-zombie", chunk, b"\xff" * 160))
            conn.recv(64)  # bytes back can only be the close frame; b"" is the socket closed
            closed_after = time.monotonic() - ended
        except TimeoutError:
            continue
        except OSError:
            closed_after = time.monotonic() - ended
    conn.close()
    assert closed_after is not None, "the stream was never closed"
    assert closed_after >= 0.5  # frames kept coming: it was read on, not closed with the call


def test_a_stream_that_goes_quiet_after_its_call_ended_closes_without_waiting_out_the_grace(
        local: Simulation) -> None:
    local.app.extensions["media_streams"].call_end_grace_s = 60.0
    ccid, tokens = _live_leg(local)
    conn = _start_stream(local, ccid, tokens, "s-quiet")
    _end_the_call_under_the_stream(local, ccid)
    assert close_code(conn, 15) == 1000  # quiet for a second: drained, long before 60 s
    conn.close()


class _Ears:
    """A fake listener: counts the caller's frames it is given."""

    stream_id, encoding = "s-asgi", "PCMU"

    def __init__(self) -> None:
        self.frames = 0

    def audio(self, chunk: int | None, payload: bytes) -> None:
        self.frames += 1

    def close(self) -> None:
        pass


class _Engine:
    def __init__(self) -> None:
        self.ears = _Ears()

    def open(self, *args: object) -> _Ears:
        return self.ears


def _pumped(session: MediaSession, texts: list[str]) -> int:
    """Run the ASGI front's reader over these frames; how many times it closed the socket."""
    messages: list[dict[str, object]] = [{"type": "websocket.receive", "text": t} for t in texts]
    messages.append({"type": "websocket.disconnect"})
    closes: list[int] = []

    async def receive() -> dict[str, object]:
        return messages.pop(0)

    async def close() -> None:
        closes.append(1)

    asyncio.run(_pump(session, receive, close))  # type: ignore[arg-type]
    return len(closes)


def _asgi_session_ended(grace_s: float) -> tuple[MediaSession, _Engine]:
    engine = _Engine()
    session = MediaSession(engine, "v3:asgi")  # type: ignore[arg-type]
    session.feed(_start("v3:asgi", "s-asgi"))
    session.last_frame_at -= 5.0  # the reader had fallen behind before the call ended
    session.end("call ended", quietly=True, grace_s=grace_s)
    return session, engine


def test_the_asgi_front_still_hears_frames_a_late_reader_finds_after_the_call_ended() -> None:
    session, engine = _asgi_session_ended(grace_s=5.0)
    frames = [_media("s-asgi", n, b"\xff" * 160) for n in (1, 2, 3)]
    closes = _pumped(session, [*frames, frame("stop", stream_id="s-asgi")])
    assert engine.ears.frames == 3
    assert closes == 1  # closed once, on stop


def test_the_asgi_front_hears_nothing_after_the_grace_and_closes() -> None:
    session, engine = _asgi_session_ended(grace_s=0.0)
    closes = _pumped(session, [_media("s-asgi", n, b"\xff" * 160) for n in (1, 2, 3)])
    assert engine.ears.frames == 0
    assert closes >= 1


def test_the_media_stream_is_closed_when_its_tokens_life_ends(local: Simulation) -> None:
    ccid, tokens = _live_leg(local)
    tokens.life_s = 2.0
    conn = _start_stream(local, ccid, tokens, "s-life")
    assert close_code(conn, 15) == 1000  # the call is still live: the token's life ended
    assert store(local).get_call(ccid).status != CallStatus.ENDED
    conn.close()


def test_a_10_mb_media_frame_is_refused_without_being_read(local: Simulation) -> None:
    ccid, tokens = _live_leg(local)
    status, conn = handshake(_port(local), f"/media/telnyx?token={tokens.issue(ccid)}")
    assert status == 101
    conn.sendall(frame_header(10 * 1024 * 1024) + b"x" * 70_000)  # the header and 70 kB of 10 MB
    assert close_code(conn, 15) == 1009
    conn.close()


def test_answer_asks_for_a_stream_of_the_callers_track(local: Simulation) -> None:
    leg = local.emulator.incoming_call()
    assert local.emulator.wait_for_gather(leg, 5)
    [answer] = accepted(local, leg.call_control_id, "answer")
    assert answer["body"]["stream_track"] == "inbound_track"
    assert answer["body"]["stream_url"].startswith("ws://127.0.0.1:")
    assert "transcription" not in answer["body"]
    assert wait_until(lambda: leg.streamer is not None and leg.streamer.sent_frames > 10)


def test_caller_speech_becomes_a_scored_message_and_escalates(local: Simulation) -> None:
    leg = local.emulator.incoming_call()
    assert local.emulator.wait_for_gather(leg, 5)
    assert wait_until(lambda: leg.streamer is not None)
    local.emulator.say(leg, "", 0, audio=load_pcmu(AUDIO / "02-asks-for-human-1.wav"))
    assert wait_until(lambda: bool(accepted(local, leg.call_control_id, "transfer")), timeout=15)
    [message] = store(local).messages(leg.call_control_id)
    assert message["engine"] == "local" and "real person" in message["text"].lower()
    assert store(local).decisions(leg.call_control_id)[0]["rule"] == "caller_intent"


def test_lost_stream_is_restarted_once_then_the_call_goes_on_without_it(local: Simulation) -> None:
    leg = local.emulator.incoming_call()
    assert local.emulator.wait_for_gather(leg, 5)
    assert wait_until(lambda: leg.streamer is not None and leg.streamer.sent_frames > 5)
    first = leg.streamer
    first.drop()
    assert wait_until(lambda: len(accepted(local, leg.call_control_id, "streaming_start")) == 1)
    assert wait_until(lambda: leg.streamer is not None and leg.streamer is not first
                      and leg.streamer.sent_frames > 5)
    assert store(local).get_call(leg.call_control_id).listening == "restarted"
    leg.streamer.drop()
    assert wait_until(lambda: store(local).get_call(leg.call_control_id).listening == "lost")
    assert len(accepted(local, leg.call_control_id, "streaming_start")) == 1
    local.emulator.press(leg, "0")  # the IVR still works without listening
    assert wait_until(lambda: leg.log.bridged)
    settle(local, leg)
    assert store(local).get_call(leg.call_control_id).status == CallStatus.TRANSFERRED


def test_streaming_failed_webhook_restarts_listening(local: Simulation) -> None:
    leg = local.emulator.incoming_call()
    assert local.emulator.wait_for_gather(leg, 5)
    local.emulator.drop_stream(leg, "connection_failed")
    assert wait_until(lambda: len(accepted(local, leg.call_control_id, "streaming_start")) == 1)
    assert store(local).get_call(leg.call_control_id).listening == "restarted"


def test_simulate_local_engine_runs_the_real_audio_path(local: Simulation, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from lifeline.simulator.scenario import load_scenario
    [result] = local.run([load_scenario(ROOT / "examples" / "calls" / "02-asks-for-human.yaml")])
    assert result.passed, result.problems
    assert result.heard and "real person" in result.heard[0]["text"].lower()
    assert result.leg.log.escalation_latency_ms is not None


def test_listen_bench_reports_speed_latency_and_memory(app_config: dict[str, object], tmp_path) -> None:  # type: ignore[no-untyped-def]
    from lifeline import create_app
    from lifeline.simulator.cli import register
    app = create_app({**app_config, "LIFELINE_ENGINE": "local", "LIFELINE_PUBLIC_URL": "http://127.0.0.1"},
                     migrate=True)
    register(app)
    try:
        out = tmp_path / "listen.json"
        result = app.test_cli_runner().invoke(args=["listen-bench", "--calls", "1", "--per-call", "1",
                                                    "--json", str(out)])
        assert result.exit_code == 0, result.output
        [run] = json.loads(out.read_text())["runs"]
        assert run["calls"] == 1 and run["utterances"] == 1
        assert (run["split"], run["lost"]) == (0, 0)
        assert run["latency_from_true_end_ms"]["p50"] > 0 and run["queue_wait_ms"]["max"] is not None
        # the true end of speech comes before the end of the recording's trailing silence
        assert run["latency_from_true_end_ms"]["p50"] > run["latency_from_last_frame_ms"]["p50"]
        assert 0 <= run["wer"] <= 1 and run["cpu_per_audio_s"] > 0 and run["peak_rss_mb"] > 50
    finally:
        app.extensions["lifeline"].close()


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(
    st.text(max_size=200), st.binary(max_size=200),
    st.fixed_dictionaries({"event": st.sampled_from(["start", "media", "stop", "dtmf", "mark", "x"])},
                          optional={"media": st.dictionaries(st.sampled_from(["payload", "chunk", "track"]),
                                                             st.one_of(st.text(max_size=20), st.integers(),
                                                                       st.none()), max_size=3),
                                    "start": st.one_of(st.none(), st.dictionaries(st.text(max_size=8),
                                                                                  st.text(max_size=8))),
                                    "sequence_number": st.one_of(st.text(max_size=5), st.integers())}
                          ).map(json.dumps)))
def test_hostile_media_frames_only_ever_raise_malformed_frame(raw: str | bytes) -> None:
    try:
        parsed = parse_frame(raw)
    except MalformedFrame:
        return
    assert isinstance(parsed.event, str)


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=60)), max_size=80))
def test_reorder_buffer_never_releases_a_chunk_twice_or_backwards(chunks: list[int | None]) -> None:
    buffer = ReorderBuffer(depth=4, silence=b"")
    released = [p for c in chunks for p in buffer.push(c, str(c).encode()) if p]
    numbered = [int(p) for p in released if p != b"None"]
    assert numbered == sorted(numbered) and len(numbered) == len(set(numbered))


@pytest.mark.parametrize("number", ["²", "٣", "1²", " 7", "-3"])
def test_odd_numbers_in_frames_read_as_absent_not_as_a_crash(number: str) -> None:
    parsed = parse_frame(frame("media", sequence_number=number, media={
        "chunk": number, "payload": base64.b64encode(b"\xff").decode()}))
    assert (parsed.sequence, parsed.chunk) == (None, None)


@pytest.mark.parametrize(("call_codec", "transcodes"), [
    ("G722", True), ("OPUS", True),  # Telnyx transcodes to the PCMU we ask for
    ("PCMA", False), ("G722", False), ("L16", False),  # it cannot: we decode the call's own codec
])
def test_calls_in_other_codecs_are_heard_through_the_codec_we_ask_for_or_decode(
        local: Simulation, call_codec: str, transcodes: bool) -> None:
    local.emulator.transcodes = transcodes
    leg = local.emulator.incoming_call(codec=call_codec)
    assert local.emulator.wait_for_gather(leg, 5)
    [answer] = accepted(local, leg.call_control_id, "answer")
    assert answer["body"]["stream_codec"] == "PCMU"
    assert wait_until(lambda: leg.streamer is not None)
    assert leg.streamer.encoding == ("PCMU" if transcodes else call_codec)
    local.emulator.say(leg, "", 0, audio=load_pcmu(AUDIO / "02-asks-for-human-1.wav"))
    assert wait_until(lambda: bool(accepted(local, leg.call_control_id, "transfer")), timeout=15)
    assert "real person" in store(local).messages(leg.call_control_id)[0]["text"].lower()


def test_a_codec_we_cannot_decode_restarts_the_stream_then_marks_listening_lost_with_why(
        local: Simulation, caplog: pytest.LogCaptureFixture) -> None:
    local.emulator.transcodes = False  # Telnyx cannot give this call PCMU: OPUS at 16 kHz it is
    leg = local.emulator.incoming_call(codec="OPUS")
    assert local.emulator.wait_for_gather(leg, 5)
    why = "stream codec OPUS at 16000 Hz cannot be decoded (Lifeline decodes PCMU, PCMA, G722 and L16)"
    # The emulator's streaming.failed (connection_lost) for the socket we closed may come first:
    # the codec reason must still be what the call says in the end.
    assert wait_until(lambda: (store(local).get_call(leg.call_control_id).listening,
                               store(local).get_call(leg.call_control_id).listening_reason) == ("lost", why),
                      10)
    [restart] = accepted(local, leg.call_control_id, "streaming_start")
    assert restart["body"]["stream_codec"] == "PCMU"
    assert "OPUS at 16000 Hz cannot be decoded" in caplog.text
    local.emulator.press(leg, "0")  # the menu still works without listening
    assert wait_until(lambda: leg.log.bridged)


def test_g722_and_l16_frames_decode_to_the_speech_they_carry() -> None:
    from G722 import G722

    from lifeline.insight.codecs import codec_for

    speech = (np.sin(np.arange(1600) / 7.0) * 6000).astype(np.int16)  # 200 ms at 8 kHz
    g722 = G722(8000, 64000).encode(speech)
    codec = codec_for("G722", 16000)
    assert codec is not None and len(codec.silence) == len(g722) // 10  # 160 bytes per 20 ms
    decode = codec.decoder()
    heard = np.concatenate([decode(g722[i:i + 160]) for i in range(0, len(g722), 160)])
    assert len(heard) == len(speech)
    assert np.corrcoef(speech[100:], heard[100:])[0, 1] > 0.99
    l16 = codec_for("L16", 16000)
    assert l16 is not None
    assert np.array_equal(l16.decoder()(np.repeat(speech, 2).astype(">i2").tobytes()), speech)
    assert codec_for("OPUS", 16000) is None and codec_for("PCMU", 16000) is None


def test_dtmf_mark_and_error_frames_on_the_stream_do_not_disturb_listening(local: Simulation) -> None:
    leg = local.emulator.incoming_call()
    assert local.emulator.wait_for_gather(leg, 5)
    assert wait_until(lambda: leg.streamer is not None and leg.streamer.sent_frames > 5)
    local.emulator.press(leg, "5")  # a wrong key: a webhook and a dtmf frame on the stream
    leg.streamer.mark("prompt-1")
    leg.streamer.error(100003, "malformed_frame", "the emulator says so")
    local.emulator.say(leg, "", 0, audio=load_pcmu(AUDIO / "02-asks-for-human-1.wav"))
    assert wait_until(lambda: bool(accepted(local, leg.call_control_id, "transfer")), timeout=15)
    assert store(local).get_call(leg.call_control_id).listening is None  # never lost or restarted


def test_a_refused_media_upgrade_leaves_no_socket_open() -> None:
    import gc
    import threading
    import warnings
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from simple_websocket import ConnectionError as Refused

    from lifeline.simulator.streamer import MediaClient

    class Refuse(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            with pytest.raises(Refused, match="403"):
                MediaClient.connect(f"ws://127.0.0.1:{server.server_port}/media/telnyx?token=used")
            gc.collect()
        assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    finally:
        server.shutdown()
        server.server_close()


def test_a_refused_media_connection_leaves_no_socket_open() -> None:
    import gc
    import socket
    import warnings

    from lifeline.simulator.streamer import MediaClient

    with socket.socket() as probe:  # a port nothing listens on once this is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(ConnectionRefusedError):
            MediaClient.connect(f"ws://127.0.0.1:{port}/media/telnyx?token=t")
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_hotwords_are_given_to_whisper_as_the_text_before_the_utterance(transcriber: Transcriber) -> None:
    from faster_whisper.tokenizer import Tokenizer

    nudged = Transcriber(None, hotwords="ombudsman supervisor")
    nudged.load()  # loaded as the app loads it: tiny.en in its 10 s window
    tokenizer = Tokenizer(transcriber._model.hf_tokenizer, False, task="transcribe", language="en")
    prompt = nudged._prompt_tokens(tokenizer)
    start = prompt.index(tokenizer.sot_sequence[0])
    assert (prompt[0] == tokenizer.sot_prev
            and tokenizer.decode(prompt[1:start]).strip() == "ombudsman supervisor")
    assert transcriber._prompt_tokens(tokenizer)[0] == tokenizer.sot_sequence[0]  # none unless asked
    heard = nudged.transcribe(pcm("02-asks-for-human-1.wav"))
    assert "real person" in heard.text.lower() and "ombudsman" not in heard.text.lower()
