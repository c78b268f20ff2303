#!/usr/bin/env python3
"""Record every caller line of a directory of call scenarios with espeak-ng and sox.

Usage:
    /work/venv/bin/python corpus/make_audio.py CALLS_DIR [--missing-only] [--dry-run]

For each scenario CALLS_DIR/<stem>.yaml and each of its `say` turns (n = 1, 2, ... in file
order) this writes CALLS_DIR/audio/<stem>-<n>.wav, an 8 kHz mono mu-law WAV limited to the
telephone band (300-3400 Hz) with 0.4 s of silence either side:

    espeak-ng -v VOICE -s SPEED -p PITCH -a AMP -w raw.wav "text"
    sox -R -G -V1 raw.wav -r 8000 -c 1 -e mu-law out.wav sinc 300-3400 pad 0.4 0.4

VOICE, SPEED (135-185 wpm), PITCH (35-75) and AMP (90-140) are chosen from a SHA-256 hash of
the scenario's file name only (never from its text or labels), so one call keeps one voice and
the same inputs always give the same recordings. A `say` that has no `audio:` line gets one
(`audio: audio/<stem>-<n>.wav`) inserted directly under it; the rest of the file is left as
written. With --missing-only, existing WAVs are kept; --dry-run prints the plan and writes
nothing. Needs python3 with PyYAML, espeak-ng and sox on PATH.
"""
import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile

import yaml

VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us+m3",
          "en-us+f2", "en-gb+m2", "en-us+f3", "en-gb+f1", "en-us+m1"]
SAY_RE = re.compile(r"^(?P<indent>\s*)- say:\s*(?P<value>.*)$")
AUDIO_RE = re.compile(r"^\s+audio:\s*(?P<value>.*)$")


def voice_for(file_name):
    """Deterministic (voice, speed, pitch, amplitude) for a scenario file name."""
    h = hashlib.sha256(os.path.basename(file_name).encode("utf-8")).digest()
    voice = VOICES[h[0] % len(VOICES)]
    speed = 135 + int.from_bytes(h[1:3], "big") % 51    # 135..185
    pitch = 35 + int.from_bytes(h[3:5], "big") % 41     # 35..75
    amp = 90 + int.from_bytes(h[5:7], "big") % 51       # 90..140
    return voice, speed, pitch, amp


def process_file(path, calls_dir, missing_only=False, dry_run=False):
    stem = os.path.splitext(os.path.basename(path))[0]
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    voice, speed, pitch, amp = voice_for(path)
    out_lines, jobs, n, changed = [], [], 0, False
    i = 0
    while i < len(lines):
        line = lines[i]
        out_lines.append(line)
        m = SAY_RE.match(line)
        if m:
            n += 1
            text = yaml.safe_load(m.group("value"))
            if not isinstance(text, str) or not text.strip():
                raise SystemExit(f"{path}: say {n} is not a one-line string")
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            am = AUDIO_RE.match(nxt)
            if am:
                rel = yaml.safe_load(am.group("value"))
            else:
                rel = f"audio/{stem}-{n}.wav"
                out_lines.append(f"{m.group('indent')}  audio: {rel}")
                changed = True
            jobs.append((text, os.path.join(calls_dir, rel)))
        i += 1
    for text, wav in jobs:
        if missing_only and os.path.exists(wav):
            continue
        print(f"{os.path.relpath(wav, calls_dir)}  {voice} s{speed} p{pitch} a{amp}  {text}")
        if dry_run:
            continue
        os.makedirs(os.path.dirname(wav), exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            raw = os.path.join(tmp, "raw.wav")
            safe_text = (" " + text) if text.startswith("-") else text
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                            "-a", str(amp), "-w", raw, safe_text], check=True)
            subprocess.run(["sox", "-R", "-G", "-V1", raw, "-r", "8000", "-c", "1",
                            "-e", "mu-law", wav, "sinc", "300-3400", "pad", "0.4", "0.4"],
                           check=True)
    if changed and not dry_run:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(out_lines) + "\n")
        yaml.safe_load(open(path, encoding="utf-8"))  # still valid YAML
    return len(jobs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("calls_dir", help="directory of scenario *.yaml files")
    ap.add_argument("--missing-only", action="store_true", help="keep WAVs that already exist")
    ap.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    args = ap.parse_args(argv)
    files = sorted(f for f in os.listdir(args.calls_dir) if f.endswith((".yaml", ".yml")))
    if not files:
        sys.exit(f"no scenarios in {args.calls_dir}")
    total = sum(process_file(os.path.join(args.calls_dir, f), args.calls_dir,
                             args.missing_only, args.dry_run) for f in files)
    print(f"{len(files)} scenarios, {total} lines")


if __name__ == "__main__":
    main()
