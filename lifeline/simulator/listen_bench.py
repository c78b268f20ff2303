"""`flask listen-bench`: the local engine's latency, accuracy, CPU and memory, fed recordings in real time.

Each simulated call streams labelled recordings (the `say` lines of the example scenarios that
have audio; 1.2 s of silence after each) through the real pipeline (G.711 decode, Silero VAD,
speculative Whisper on the shared model and queue) paced at 20 ms per frame, `--calls` streams
at once. Latency is measured from three points to the transcript being ready:

- the **true end of speech**: the recording's last sample above -54 dBFS, found from the audio
  (espeak and real callers leave near-silence after the words, so later points flatter us);
- the end of speech as the VAD saw it (what this bench reported before);
- the recording's last audio frame (what `flask bench` measures to the transfer).

With `--sweep`, it instead replays the recordings offline through the endpointer alone for each
end-of-turn window, counting sentences split in two and utterances lost, and the VAD's delay.
"""

from __future__ import annotations

import json
import resource
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
import numpy as np
from flask import current_app
from flask.cli import with_appcontext

from lifeline.insight.asr_queue import Job
from lifeline.insight.endpoint import EndpointConfig, UtteranceCutter
from lifeline.insight.g711 import ULAW_SILENCE, decode
from lifeline.insight.local import LocalEngine
from lifeline.insight.vad import SileroModel

from .audio import FRAME_BYTES, load_pcmu, true_speech_end
from .bench import percentile
from .scenario import load_scenario

GAP_S = 1.2


@dataclass(frozen=True)
class Recording:
    """One labelled utterance: its PCMU bytes, what was said, and where the speech ends."""

    name: str
    pcmu: bytes
    text: str | None
    speech_end_s: float

    @property
    def duration_s(self) -> float:
        """Length of the file, padding included."""
        return len(self.pcmu) / 8000


def recording(name: str, pcmu: bytes, text: str | None) -> Recording:
    """A Recording from PCMU bytes; refuses one with no speech in it."""
    end = true_speech_end(decode(pcmu, "PCMU"))
    if end is None:
        raise click.ClickException(f"{name} holds no sound above -54 dBFS: it cannot be a labelled utterance")
    return Recording(name, pcmu, text, end)


def load_recordings(folder: Path) -> list[Recording]:
    """The recordings of `folder`: from its scenario YAMLs (with their text) or, failing that, its WAVs."""
    found: list[Recording] = []
    for path in sorted(folder.glob("*.yaml")):
        for turn in load_scenario(path).turns:
            if turn.kind == "say" and turn.audio is not None and turn.audio.is_file():
                found.append(recording(turn.audio.name, load_pcmu(turn.audio), str(turn.value)))
    if not found:
        found = [recording(p.name, load_pcmu(p), None) for p in sorted(folder.rglob("*.wav"))]
    if not found:
        raise click.ClickException(f"{folder} has no scenarios with audio and no .wav files")
    return found


def words(text: str) -> list[str]:
    """Lower-case words without punctuation, as WER counts them."""
    cleaned = "".join(c if c.isalnum() or c == "'" else " " for c in text.lower().replace("-", " "))
    return cleaned.split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[len(hyp)]


@dataclass
class _Stream:
    index: int
    plan: list[tuple[Recording, float]]  # (recording, where its slot starts in the stream)
    length_s: float
    started: float = 0.0

    def slot(self, stream_s: float) -> int:
        """Index of the recording whose slot holds this stream time."""
        found = 0
        for n, (_, start) in enumerate(self.plan):
            if start <= stream_s:
                found = n
        return found


def _stats(values: list[float]) -> dict[str, float | None]:
    return {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95),
            "max": round(max(values), 1) if values else None}


def run_listen_bench(engine: LocalEngine, recordings: list[Recording], calls: int, per_call: int,
                     echo: Any = print) -> dict[str, Any]:
    """Stream `per_call` recordings on each of `calls` streams at once; measure every utterance."""
    jobs: list[Job] = []
    lock = threading.Lock()

    def transcribed(job: Job) -> None:
        with lock:
            jobs.append(job)

    engine.bind(lambda *message: None)  # only the timings matter here
    engine.on_transcribed = transcribed
    silence = bytes([ULAW_SILENCE]) * int(8000 * GAP_S)
    streams: dict[str, _Stream] = {}
    for index in range(calls):
        plan, at = [], 0.0
        for n in range(per_call):
            item = recordings[(index * 3 + n) % len(recordings)]
            plan.append((item, at))
            at += item.duration_s + GAP_S
        streams[f"bench-{index}"] = _Stream(index, plan, at)
    finals: dict[str, list[Job]] = {call: [] for call in streams}
    final_at: dict[int, float] = {}

    def final(job: Job) -> None:
        with lock:
            finals[job.call_id].append(job)
            final_at[id(job)] = time.monotonic()

    engine.on_final = final

    def stream(call_id: str) -> None:
        state = streams[call_id]
        listener = engine.open(call_id, f"s{state.index}", "PCMU")
        audio = b"".join(item.pcmu + silence for item, _ in state.plan)
        state.started = due = time.monotonic()
        for chunk, start in enumerate(range(0, len(audio), FRAME_BYTES), start=1):
            listener.audio(chunk, audio[start:start + FRAME_BYTES])
            due += 0.02
            time.sleep(max(0.0, due - time.monotonic()))
        listener.close()

    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    threads = [threading.Thread(target=stream, args=(call,)) for call in streams]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.wait_idle(120)
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    engine.on_transcribed = engine.on_final = None
    cpu_s = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    report = _report(streams, finals, jobs, final_at)
    audio_s = sum(s.length_s for s in streams.values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"calls": calls, "model": engine.transcriber.name, "end_of_turn_s": engine.endpointing.end_s,
            "speculative": engine.speculative, "wall_s": round(time.monotonic() - started, 1), **report,
            "cpu_s": round(cpu_s, 1), "cpu_per_audio_s": round(cpu_s / audio_s, 3),
            "peak_rss_mb": round(peak_mb, 1)}


def _report(streams: dict[str, _Stream], finals: dict[str, list[Job]], jobs: list[Job],
            final_at: dict[int, float]) -> dict[str, Any]:
    """Per-utterance figures. A transcript is handed on once its decode has finished AND its turn
    is known to have ended: a speculative decode can finish in the pause, before the end-of-turn
    window has run out, and is only usable from then on, so the later of the two counts."""
    true_end, vad_end, last_frame, waits, rtf = [], [], [], [], []
    split = lost = errors = ref_words = 0
    for call_id, state in streams.items():
        per_slot: dict[int, list[Job]] = {}
        for job in finals[call_id]:
            per_slot.setdefault(state.slot(job.utterance.start_s), []).append(job)
        for n, (item, slot_start) in enumerate(state.plan):
            got = per_slot.get(n, [])
            lost += not got
            split += len(got) > 1
            heard = " ".join(j.transcript.text for j in got if j.transcript is not None)
            if item.text is not None:
                errors += edit_distance(words(item.text), words(heard))
                ref_words += len(words(item.text))
            if not got or got[-1].finished_at is None:
                continue
            last = got[-1]
            assert last.finished_at is not None
            usable_at = max(last.finished_at, final_at.get(id(last), last.finished_at))
            true_end.append((usable_at - state.started - slot_start - item.speech_end_s) * 1000)
            last_frame.append((usable_at - state.started - slot_start - item.duration_s) * 1000)
            vad_end.append((usable_at - last.ended_at) * 1000)
    for job in jobs:
        if job.wait_s is not None and job.finished_at is not None and job.started_at is not None:
            waits.append(job.wait_s * 1000)
            speech_s = max(0.01, len(job.utterance.audio) / 8000)
            rtf.append((job.finished_at - job.started_at) / speech_s)
    speculative = [j for j in jobs if j.speculative]
    wasted = [j for j in speculative if j.cancelled]
    wasted_s = sum((j.finished_at or 0) - (j.started_at or 0) for j in wasted)
    decode_s = sum((j.finished_at or 0) - (j.started_at or 0) for j in jobs)
    expected = sum(len(s.plan) for s in streams.values())
    return {"utterances": expected, "split": split, "lost": lost,
            "wer": round(errors / ref_words, 3) if ref_words else None,
            "latency_from_true_end_ms": _stats(true_end), "latency_from_vad_end_ms": _stats(vad_end),
            "latency_from_last_frame_ms": _stats(last_frame), "queue_wait_ms": _stats(waits),
            "greedy_after_wait": sum(1 for j in jobs if j.fast), "rtf_p50": percentile(rtf, 0.5),
            "decodes": len(jobs), "speculative_decodes": len(speculative),
            "speculative_wasted": len(wasted), "wasted_decode_s": round(wasted_s, 2),
            "decode_s": round(decode_s, 2)}


# Where speech falls against the VAD's 32 ms windows changes what it hears in a short pause: each
# recording is replayed at these offsets (8 kHz samples across one window) so that a window
# chosen here does not split sentences merely because a stream happened to start elsewhere.
SWEEP_SHIFTS = tuple(range(0, 256, 32))


def sweep_endpointing(recordings: list[Recording], windows: list[float],
                      vad: SileroModel | None = None) -> list[dict[str, Any]]:
    """For each end-of-turn window: recordings split or lost, and how long after the true end of
    speech the turn was confirmed, replaying the recordings (1.2 s apart, at every offset in
    SWEEP_SHIFTS) through the VAD alone."""
    vad = vad or SileroModel()
    gap = np.zeros(int(8000 * GAP_S), dtype=np.int16)
    rows = []
    for end_s in windows:
        cutter = UtteranceCutter(vad, EndpointConfig(end_s=end_s))
        split = lost = 0
        delays: list[float] = []
        for shift in SWEEP_SHIFTS:
            lead = np.zeros(shift, dtype=np.int16)
            for item in recordings:
                samples = np.concatenate([lead, decode(item.pcmu, "PCMU"), gap])
                offset = cutter.fed_s + shift / 8000
                finals = []
                for start in range(0, len(samples), 160):
                    for utterance in cutter.feed(samples[start:start + 160]):
                        if utterance.final:
                            finals.append(cutter.fed_s - offset)  # when the turn was confirmed
                lost += not finals
                split += len(finals) > 1
                if finals:
                    delays.append((finals[-1] - item.speech_end_s) * 1000)
        rows.append({"end_of_turn_s": end_s, "utterances": len(recordings) * len(SWEEP_SHIFTS),
                     "split": split, "lost": lost, "confirmed_after_true_end_ms": _stats(delays)})
    return rows


@click.command("listen-bench")
@click.option("--calls", "call_counts", type=click.IntRange(1, 32), multiple=True, default=(1, 4),
              show_default=True, help="Concurrent streams (repeat for several runs).")
@click.option("--per-call", type=click.IntRange(1, 200), default=12, show_default=True,
              help="Recordings each stream plays.")
@click.option("--audio", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=Path("examples/calls"), show_default=True,
              help="Scenario YAMLs with audio (labelled), or a folder of WAVs.")
@click.option("--end-of-turn", type=click.FloatRange(0.1, 3.0), default=None,
              help="Silence that ends a turn, seconds (default: LIFELINE_END_OF_TURN_S).")
@click.option("--no-speculation", is_flag=True, help="Decode only once the turn has ended.")
@click.option("--sweep", "sweep", type=str, default=None,
              help="Comma-separated end-of-turn windows to compare offline (no Whisper), e.g. 0.2,0.3,0.4.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def listen_bench(call_counts: tuple[int, ...], per_call: int, audio: Path, end_of_turn: float | None,
                 no_speculation: bool, sweep: str | None, json_out: Path | None) -> None:
    """Measure the local engine: latency from the true end of speech, WER, CPU, waits, memory."""
    recordings = load_recordings(audio)
    if sweep:
        try:
            windows = [float(w) for w in sweep.split(",")]
        except ValueError:
            raise click.BadParameter("give seconds separated by commas, e.g. 0.2,0.3",
                                     param_hint="--sweep") from None
        rows = sweep_endpointing(recordings, windows)
        for row in rows:
            click.echo(json.dumps(row))
        if json_out:
            json_out.write_text(json.dumps({"sweep": rows}, indent=2))
        return
    settings = current_app.extensions["lifeline"].settings
    overrides: dict[str, Any] = {"public_url": settings.public_url or "http://127.0.0.1"}
    if end_of_turn is not None:
        overrides["end_of_turn_s"] = end_of_turn
    engine = LocalEngine(replace(settings, **overrides))
    engine.speculative = not no_speculation
    engine.warm()
    results = []
    try:
        for calls in call_counts:
            click.echo(f"streaming {per_call} recordings on each of {calls} call(s) in real time...")
            result = run_listen_bench(engine, recordings, calls, per_call)
            results.append(result)
            click.echo(json.dumps(result))
    finally:
        engine.close()
    if json_out:
        json_out.write_text(json.dumps({"runs": results}, indent=2))
