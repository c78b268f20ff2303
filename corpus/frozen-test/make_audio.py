#!/usr/bin/env python3
"""Regenerate calls/audio/*.wav for the frozen test split.

For every `say` in calls/*.yaml this writes calls/audio/<stem>-<n>.wav
(8 kHz mono G.711 mu-law, telephone band 300-3400 Hz, 0.4 s silence either side).
Voice, speed, pitch and amplitude are chosen from a SHA-256 hash of the call
file's stem only, never from its labels, so output is reproducible.

Usage: python3 make_audio.py        (needs espeak-ng, sox and PyYAML)
"""
import hashlib
import pathlib
import subprocess
import sys
import tempfile

import yaml

HERE = pathlib.Path(__file__).resolve().parent
CALLS = HERE / "calls"
AUDIO = CALLS / "audio"
VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us+m3",
          "en-us+f2", "en-gb+m2", "en-us+f3", "en-gb+f1", "en-us+m1", "en-gb-x-gbclan"]


def params(stem):
    h = int(hashlib.sha256(stem.encode("utf-8")).hexdigest(), 16)
    voice = VOICES[h % len(VOICES)]
    speed = 135 + (h >> 8) % 51       # 135..185 wpm
    pitch = 35 + (h >> 16) % 41       # 35..75
    amp = 90 + (h >> 24) % 51         # 90..140
    return voice, speed, pitch, amp


def main():
    AUDIO.mkdir(parents=True, exist_ok=True)
    made = 0
    with tempfile.TemporaryDirectory() as tmp:
        raw = pathlib.Path(tmp) / "raw.wav"
        for path in sorted(CALLS.glob("*.yaml")):
            stem = path.stem
            voice, speed, pitch, amp = params(stem)
            call = yaml.safe_load(path.read_text())
            n = 0
            for turn in call["turns"]:
                if "say" not in turn:
                    continue
                n += 1
                out = AUDIO / f"{stem}-{n}.wav"
                expected = f"audio/{stem}-{n}.wav"
                if turn.get("audio") != expected:
                    sys.exit(f"{path.name}: say {n} has audio {turn.get('audio')!r}, expected {expected!r}")
                subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                                "-a", str(amp), "-w", str(raw), turn["say"]], check=True)
                subprocess.run(["sox", "-R", "-G", "-V1", str(raw), "-r", "8000", "-c", "1",
                                "-e", "mu-law", str(out), "sinc", "300-3400", "pad", "0.4", "0.4"],
                               check=True)
                made += 1
            print(f"{stem}: {n} say(s), voice={voice} speed={speed} pitch={pitch} amp={amp}")
    print(f"wrote {made} files to {AUDIO}")


if __name__ == "__main__":
    main()
