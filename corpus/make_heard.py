"""Write corpus/train/utterances-heard.yaml: the training lines as the local engine hears them.

Hand-written "asr" lines guess what a recogniser makes of phone audio; this asks the recogniser.
Every hand-written training line (utterances.yaml, -seed, -breadth and -blind)
is spoken with espeak-ng and cut to the telephone band exactly as corpus/make_audio.py does (the
voice, speed, pitch and amplitude come from a hash of the line's text), then heard through the
app's own local engine (Silero VAD + the configured Whisper model, tiny.en by default) the way
`flask evaluate --engine local` hears a call. What Whisper wrote is kept with the line's labels
(the caller meant the same thing) whenever it differs from the text beyond case and punctuation
and still holds at least half of the line's content words: "Agent" heard as "Hey, John." is kept
out, because a model taught that a greeting asks for a person would transfer calm callers.

    LIFELINE_TRANSCRIPTION_MAX_WAIT=60 python corpus/make_heard.py [--limit N]

A later round's writers get their own file, in shards so that two processes share the cores:

    python corpus/make_heard.py --sources corpus/train/utterances-blind4.yaml ... \
        --shard 0/2 --shuffle 6 --out /tmp/heard-0.yaml      (and --shard 1/2 beside it)

Slow (a few minutes: one Whisper decode a line) and tied to the model version, so its output is
committed and the training script reads the file, never the audio. Train split only.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "corpus" / "train"
SOURCES = ("utterances.yaml", "utterances-seed.yaml", "utterances-breadth.yaml", "utterances-blind.yaml")
OUT = TRAIN / "utterances-heard.yaml"


def _make_audio_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("make_audio", ROOT / "corpus" / "make_audio.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", "", text.lower().replace("'", ""))).strip()


_STOP = frozenset("a an the i me my you your to of and or is it this that be am are was in on at for "
                  "with just so please now can could would will do not no yes oh um er".split())


def content_recall(original: str, heard: str) -> float:
    """The share of the original's content words that the recogniser kept."""
    words = {w for w in _plain(original).split() if w not in _STOP}
    if not words:
        return 1.0
    return len(words & set(_plain(heard).split())) / len(words)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def speak(text: str, wav: Path, voice_for) -> None:  # type: ignore[no-untyped-def]
    """espeak-ng + sox, as corpus/make_audio.py records a say (voice from a hash of the text)."""
    voice, speed, pitch, amp = voice_for(text)
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.wav")
        safe = (" " + text) if text.startswith("-") else text
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-a", str(amp),
                        "-w", raw, safe], check=True)
        subprocess.run(["sox", "-R", "-G", "-V1", raw, "-r", "8000", "-c", "1", "-e", "mu-law", str(wav),
                        "sinc", "300-3400", "pad", "0.4", "0.4"], check=True)


def main(argv: list[str] | None = None) -> int:
    """Command line: speak, hear and write."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--limit", type=int, default=0, help="only the first N lines (a quick try)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--sources", type=Path, nargs="+", default=[TRAIN / name for name in SOURCES],
                        help="utterance files to speak and hear (default: the first rounds' files)")
    parser.add_argument("--shard", default="0/1", help="K/N: only every N-th line, from the K-th")
    parser.add_argument("--shuffle", type=int, default=None, metavar="SEED",
                        help="shuffle the lines first (a fixed seed), so a cut-short run still samples every file")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from dotenv import load_dotenv

    load_dotenv(ROOT / "examples" / "emulator.env")
    from insight.corpus import load_utterances
    from lifeline import create_app
    from simulator.evaluate import LocalHearing

    lines = [u for path in args.sources for u in load_utterances(path)]
    if args.shuffle is not None:
        random.Random(args.shuffle).shuffle(lines)
    shard, shards = (int(part) for part in args.shard.split("/"))
    lines = lines[shard::shards]
    if args.limit:
        lines = lines[:args.limit]
    hear = LocalHearing(create_app().extensions["lifeline"].settings)
    voice_for = _make_audio_module().voice_for
    out = ["# GENERATED by corpus/make_heard.py: hand-written train lines spoken by espeak-ng (8 kHz mu-law)",
           "# and heard by the local engine (tiny.en); labels are the original line's. Do not edit."]
    kept = 0
    args.out.write_text("\n".join(out) + "\n")
    with tempfile.TemporaryDirectory() as tmp, args.out.open("a") as sink:
        for index, line in enumerate(lines):
            wav = Path(tmp) / f"line-{index}.wav"
            speak(line.text, wav, voice_for)
            heard = " ".join(t.strip() for t in hear(wav) if t.strip())
            if not heard or _plain(heard) == _plain(line.text) or content_recall(line.text, heard) < 0.5:
                continue
            kept += 1
            intents = ", ".join(sorted(line.intents))
            sink.write(f"- {{text: {_quote(heard)}, intents: [{intents}], frustration: {line.frustration}, "
                       f"note: {_quote('heard: ' + line.text)}}}\n")
            sink.flush()
            if kept % 50 == 0:
                print(f"{index + 1} lines heard, {kept} kept", flush=True)
    print(f"wrote {args.out}: {kept} of {len(lines)} lines heard differently")
    return 0


if __name__ == "__main__":
    sys.exit(main())
