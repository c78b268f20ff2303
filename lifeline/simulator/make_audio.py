"""Record every `say` of some scenarios with espeak-ng + sox, and point the scenarios at them.

    python -m lifeline.simulator.make_audio examples/calls/*.yaml [--force]

Writes `audio/<scenario>-<n>.wav` beside each scenario (8 kHz G.711 mu-law in a WAV, band-passed
to 300-3400 Hz like a phone line, 0.4 s of silence either side) and adds `audio:` under each
`say` that had none. Needs `apt-get install espeak-ng sox`; the recordings are committed so
nobody else needs them. Output is byte-identical on reruns (sox -R).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .scenario import ScenarioError, load_scenario

VOICES = ("en-us", "en-gb", "en-us+m3", "en-us+f2", "en-gb+m2", "en-us+f3", "en-gb+f1", "en-us+m1")


def voice_for(scenario_path: Path, frustrated: bool) -> tuple[str, int, int, int]:
    """A voice per caller (stable across runs); frustrated callers speak faster, higher, louder."""
    pick = int(hashlib.sha256(scenario_path.stem.encode()).hexdigest(), 16)
    voice = VOICES[pick % len(VOICES)]
    return (voice, 180, 75, 140) if frustrated else (voice, 150, 50, 100)


def record(text: str, out: Path, voice: tuple[str, int, int, int]) -> None:
    """Speak text into an 8 kHz mu-law WAV."""
    name, speed, pitch, amplitude = voice
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-v", name, "-s", str(speed), "-p", str(pitch), "-a", str(amplitude),
                        "-w", str(raw), text], check=True)
        subprocess.run(["sox", "-R", "-G", "-V1", str(raw), "-r", "8000", "-c", "1", "-e", "mu-law",
                        str(out), "sinc", "300-3400", "pad", "0.4", "0.4"], check=True)


def add_audio(path: Path, force: bool) -> int:
    """Record the says of one scenario that have no audio yet; returns how many were recorded."""
    scenario = load_scenario(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    voice = voice_for(path, bool(scenario.expect.transfer))
    says = [t for t in scenario.turns if t.kind == "say"]
    say_lines = [i for i, line in enumerate(lines) if re.match(r"^\s*-\s+say:", line)]
    if len(say_lines) != len(says):
        raise ScenarioError(f"{path}: write each `say` on one line so audio can be added after it")
    made = 0
    for number, (turn, line_no) in reversed(list(enumerate(zip(says, say_lines, strict=True), start=1))):
        relative = Path("audio") / f"{path.stem}-{number}.wav"
        if turn.audio is not None and turn.audio.is_file() and not force:
            continue
        record(turn.value, path.parent / relative, voice)
        made += 1
        if turn.audio is None:
            indent = lines[line_no].index("say:")
            lines.insert(line_no + 1, " " * indent + f"audio: {relative.as_posix()}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return made


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="+", type=Path)
    parser.add_argument("--force", action="store_true", help="record again even where audio exists")
    args = parser.parse_args(argv)
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        print(f"make_audio: {' and '.join(missing)} not found: apt-get install espeak-ng sox",
              file=sys.stderr)
        return 2
    total = 0
    for path in args.scenarios:
        try:
            made = add_audio(path, args.force)
        except ScenarioError as exc:
            print(f"make_audio: {exc}", file=sys.stderr)
            return 2
        total += made
        print(f"{path}: {made} recording(s)")
    print(f"{total} recording(s) written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
