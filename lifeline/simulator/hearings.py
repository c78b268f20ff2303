"""What the local engine heard, kept call by call for `flask evaluate --engine local --hearings FILE`.

Hearing a corpus takes minutes (Whisper on every recording); what the understanding model and
the rules make of the words takes seconds. So with `--hearings FILE` every say of a call is
heard once, all of them (not only up to the transfer, so that other rules can be replayed on the
same words), and kept in FILE; a later run reads the call back instead of hearing it again. A
contact centre tuning its rules.yaml on its own recordings, or a developer comparing two models,
then measures each change on audio in seconds.

A call is kept under the SHA-256 of its recordings' bytes and of everything that decides what is
heard: the settings (Whisper model, mirror image, hotwords, second hearing, end of turn), the libraries'
versions, a model directory's weights, and the source of the hearing path itself (endpointer,
VAD, decoder, how evaluate streams a call). So a changed recording, setting or hearing code is
heard afresh, never read back stale. The file is written whole to a temporary file and renamed
into place, every few calls as well as at the end, so an interrupted run keeps what it heard.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from lifeline.insight.base import Reading
from lifeline.insight.embedding import sha256_of
from lifeline.ivr.config import Settings

# The file's layout. 2: the lead-in is part of each call's key, not of the settings; the bump makes
# an older file's entries, which no key can match now, be dropped rather than carried as dead weight.
FORMAT = 2
_LIBRARIES = ("faster-whisper", "ctranslate2", "onnxruntime")  # the decoder and the Silero VAD's runtime
# The code between a recording and a message: any edit to it may change what is heard.
_HEARING_MODULES = tuple(f"lifeline.{name}" for name in (
    "insight.local", "insight.asr_queue", "insight.endpoint", "insight.vad", "insight.frames", "insight.g711",
    "insight.whisper", "insight.base", "simulator.audio", "simulator.listening"))


class HeardLine(NamedTuple):
    """One message a recording became: the words, the recogniser's confidence, its readings."""

    text: str
    confidence: float | None
    readings: tuple[Reading, ...] = ()


CallHearing = list[list[HeardLine]]  # per say, in script order: the messages it became


class HearingsFileError(ValueError):
    """A --hearings file cannot be read; the message names it and the fix."""


def hearing_settings(settings: Settings, trail_s: float) -> dict[str, object]:
    """Everything besides the recordings and the silence before them that decides what is heard.

    Thread and worker counts are left out: they change how fast a call is heard, not what
    (evaluate waits for every job and never decodes greedily under load).
    """
    versions: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    code = hashlib.sha256()
    for module in _HEARING_MODULES:
        code.update(Path(str(importlib.import_module(module).__file__)).read_bytes())
    model = settings.whisper_model_name
    weights = Path(model) / "model.bin"  # a model directory: its weights (bundled ones are pinned)
    return {"format": FORMAT, "whisper_model": model,
            "weights": sha256_of(weights) if weights.is_file() else None,
            "whisper_mirror_db": settings.whisper_mirror_db, "second_hearing": settings.second_hearing,
            "whisper_hotwords": settings.whisper_hotwords,
            "end_of_turn_s": settings.end_of_turn_s, "trail_s": trail_s,
            "code": code.hexdigest(), **versions}


class HearingStore:
    """Kept hearings in one JSON file: read at start, written back as calls are heard."""

    SAVE_EVERY = 10  # calls heard between writes

    def __init__(self, path: Path, settings: Mapping[str, object]) -> None:
        self.path = path
        self.settings = dict(settings)
        self._calls: dict[str, Any] = {}
        self.reused = 0
        self.heard = 0
        self._unsaved = 0
        if path.exists():
            self._calls = _read(path)
        elif not os.access(_existing_parent(path), os.W_OK):
            raise HearingsFileError(f"{path} cannot be written (no write access to its folder): "
                                    "name a file in a folder you can write to")

    def key(self, recordings: Sequence[Path], lead_s: float) -> str:
        """The call's key: its recordings' bytes, in order, the silence before them, and the settings."""
        # The lead-in is the call's own (`flask evaluate --offsets` hears each call at several), so
        # it is keyed here rather than held in the settings every call shares.
        # Rounded, so 1.0 + 7 * 0.02 and 1.14 are one lead-in; a float, so 1 and 1.0 are too.
        keyed = {**self.settings, "lead_s": float(round(lead_s, 6))}
        digest = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode())
        for recording in recordings:
            digest.update(hashlib.sha256(recording.read_bytes()).digest())
        return digest.hexdigest()

    def get(self, key: str, says: int) -> CallHearing | None:
        """The call as it was heard, if it was kept (with as many says as it has now)."""
        kept = self._calls.get(key)
        if not isinstance(kept, list) or len(kept) != says:
            return None
        try:
            hearing = [[HeardLine(str(text), None if confidence is None else float(confidence),
                                  tuple(Reading(*r) for r in readings))
                        for text, confidence, readings in say] for say in kept]
        except (TypeError, ValueError):
            return None  # an entry edited by hand or of another shape: the call is heard again
        self.reused += 1
        return hearing

    def put(self, key: str, hearing: CallHearing) -> None:
        """Keep a call just heard (written to the file every SAVE_EVERY calls, and by save())."""
        self._calls[key] = [[[line.text, line.confidence, [list(r) for r in line.readings]] for line in say]
                            for say in hearing]
        self.heard += 1
        self._unsaved += 1
        if self._unsaved >= self.SAVE_EVERY:
            self.save()

    def save(self) -> None:
        """Write the file whole under a temporary name, then rename it into place."""
        if not self._unsaved and self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A file of its own per write: two runs on one FILE never write into each other's.
        with tempfile.NamedTemporaryFile("w", dir=self.path.parent, prefix=self.path.name + ".",
                                         suffix=".partial", delete=False) as partial:
            json.dump({"lifeline_hearings": FORMAT, "calls": self._calls}, partial)
            partial.flush()
            os.fsync(partial.fileno())
        os.replace(partial.name, self.path)
        self._unsaved = 0


def _existing_parent(path: Path) -> Path:
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def _read(path: Path) -> dict[str, Any]:
    """The kept calls of a hearings file; any other file is refused, never overwritten."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HearingsFileError(f"{path} is not a hearings file written by `flask evaluate --hearings` "
                                f"({exc}): remove it or name another file") from exc
    if (not isinstance(data, dict) or not isinstance(data.get("calls"), dict)
            or not isinstance(data.get("lifeline_hearings"), int)):
        raise HearingsFileError(f"{path} is not a hearings file written by `flask evaluate --hearings`: "
                                "remove it or name another file")
    if data["lifeline_hearings"] > FORMAT:
        # a later Lifeline's file: rewriting it in this layout would throw its hearings away
        raise HearingsFileError(f"{path} was written by a newer Lifeline (hearings layout "
                                f"{data['lifeline_hearings']}, this one reads {FORMAT}): "
                                "upgrade, or name another file")
    if data["lifeline_hearings"] != FORMAT:
        return {}  # an older layout: everything is heard again and the file rewritten
    calls: dict[str, Any] = data["calls"]
    return calls
