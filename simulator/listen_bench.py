"""`flask listen-bench`: the local engine's speed and memory, fed recordings in real time.

Each simulated call streams the example recordings (1.2 s of silence between them) through the
real pipeline (G.711 decode, endpointer, Whisper on the shared model) paced at 20 ms per frame,
with `--calls` streams at once. Reported per utterance: real-time factor (recognition time /
audio length), latency from the last frame of speech to the finished message, and the process's
peak resident memory.
"""

from __future__ import annotations

import json
import resource
import threading
import time
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from insight.g711 import ULAW_SILENCE
from insight.local import LocalEngine

from .audio import FRAME_BYTES, load_pcmu
from .bench import percentile


def _recordings(folder: Path) -> list[bytes]:
    return [load_pcmu(p) for p in sorted(folder.glob("*.wav"))]


def run_listen_bench(engine: LocalEngine, recordings: list[bytes], calls: int, per_call: int,
                     echo: Any = print) -> dict[str, Any]:
    """Stream `per_call` recordings on each of `calls` streams at once; measure every utterance."""
    rtf: list[float] = []
    latency: list[float] = []
    lock = threading.Lock()

    def transcribed(call_id: str, busy_s: float, audio_s: float, since_end_s: float) -> None:
        with lock:
            rtf.append(busy_s / audio_s)
            latency.append(since_end_s * 1000)

    engine.bind(lambda *message: None)  # only the timings matter here
    engine.on_transcribed = transcribed
    silence = bytes([ULAW_SILENCE]) * int(8000 * 1.2)

    def stream(index: int) -> None:
        call_id = f"bench-{index}"
        listener = engine.open(call_id, f"s{index}", "PCMU")
        audio = b"".join(recordings[(index * 3 + n) % len(recordings)] + silence for n in range(per_call))
        due = time.monotonic()
        for chunk, start in enumerate(range(0, len(audio), FRAME_BYTES), start=1):
            listener.audio(chunk, audio[start:start + FRAME_BYTES])
            due += 0.02
            time.sleep(max(0.0, due - time.monotonic()))
        listener.close()

    started = time.monotonic()
    threads = [threading.Thread(target=stream, args=(i,)) for i in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.wait_idle(120)
    engine.on_transcribed = None
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"calls": calls, "utterances": len(rtf), "wall_s": round(time.monotonic() - started, 1),
            "rtf_p50": percentile(rtf, 0.5), "rtf_p95": percentile(rtf, 0.95),
            "latency_ms_p50": percentile(latency, 0.5), "latency_ms_p95": percentile(latency, 0.95),
            "latency_ms_max": round(max(latency), 1) if latency else None,
            "peak_rss_mb": round(peak_mb, 1)}


@click.command("listen-bench")
@click.option("--calls", "call_counts", type=click.IntRange(1, 32), multiple=True, default=(1, 4),
              show_default=True, help="Concurrent streams (repeat for several runs).")
@click.option("--per-call", type=click.IntRange(1, 50), default=6, show_default=True,
              help="Recordings each stream plays.")
@click.option("--audio", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=Path("examples/calls/audio"), show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def listen_bench(call_counts: tuple[int, ...], per_call: int, audio: Path, json_out: Path | None) -> None:
    """Measure the local engine: real-time factor, end-of-speech latency, peak memory."""
    settings = current_app.extensions["lifeline"].settings
    from dataclasses import replace
    engine = LocalEngine(replace(settings, public_url=settings.public_url or "http://127.0.0.1"))
    engine.warm()
    recordings = _recordings(audio)
    results = []
    for calls in call_counts:
        click.echo(f"streaming {per_call} recordings on each of {calls} call(s) in real time...")
        result = run_listen_bench(engine, recordings, calls, per_call)
        results.append(result)
        click.echo(json.dumps(result))
    if json_out:
        json_out.write_text(json.dumps({"runs": results}, indent=2))
