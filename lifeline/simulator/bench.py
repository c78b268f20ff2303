"""`flask bench`: many calls against the app served by gunicorn, as in production.

The app runs as a gunicorn subprocess (gunicorn.conf.py) on a loopback port with a fresh
database; with `--instances N`, N such instances share one PostgreSQL behind HAProxy
(lifeline/simulator/haproxy.py), which carries webhooks and media WebSockets alike. This process runs the
emulator and the callers. Callers cycle through the example scenarios. With --chaos, the
emulator duplicates, delays and reorders webhooks, fails or stalls commands, and callers hang up
at random moments. The report: escalation latency and webhook acknowledgement percentiles,
errors (webhooks never acknowledged, 5xx answers, callers left without a menu, missed
escalations, error lines the app logged), double transfers (an agent sent the same caller
twice), and calls the app never closed. The app logs JSON lines (LIFELINE_LOG_FORMAT=json), so
its errors are read by level, not guessed from the text.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from lifeline.ivr.config import PROJECT_ROOT, Settings
from lifeline.ivr.errors import StoreError
from lifeline.ivr.store.sql import SqlStore

from .caller import CallResult, play
from .emulator import Emulator
from .faults import Chaos
from .haproxy import HAProxy, haproxy_path
from .health import wait_healthy
from .runner import caller_number, twilio_side_telnyx
from .scenario import Scenario, Turn, load_scenario, require_audio
from .server import ServerThread, emulator_app
from .twilio.emulator import TwilioEmulator
from .twilio.server import twilio_emulator_app

AGENTS = "+15550001111,+15550002222"
_LOG_ERROR_LEVELS = frozenset({"ERROR", "CRITICAL"})
# A line that is not one of the app's JSON records but reports a failure: Python printing a
# traceback outside logging, or a crash before logging was set up.
_UNSTRUCTURED_PROBLEM = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b|Exception in ")


class BenchUsageError(ValueError):
    """Options that cannot work together; the message says what to add or change."""


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark run."""

    engine: str = "telnyx"
    provider: str = "telnyx"
    calls: int = 100
    concurrency: int = 10
    chaos: float = 0.0
    speed: float = 10.0
    workers: int | None = None
    threads: int | None = None
    database_url: str | None = None
    seed: int = 7
    ramp_s: float = 10.0
    instances: int = 1
    # CPUs for the app (gunicorn, via taskset) and for this process (emulator and callers); None:
    # wherever the scheduler puts them. Apart, the load generator cannot take the app's CPU.
    app_cpus: tuple[int, ...] | None = None
    generator_cpus: tuple[int, ...] | None = None


def parse_cpus(text: str) -> tuple[int, ...]:
    """CPU numbers from a list such as "0", "1,3" or "0-1"; BenchUsageError names what is wrong."""
    cpus: set[int] = set()
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            cpus.update(range(int(low), int(high or low) + 1))
    except ValueError:
        raise BenchUsageError(f"CPU list {text!r}: use numbers such as 0, 1,3 or 0-1") from None
    usable = os.sched_getaffinity(0)
    if not cpus or not cpus <= usable:
        raise BenchUsageError(f"CPU list {text!r}: this machine lets the bench use CPUs {sorted(usable)}")
    return tuple(sorted(cpus))


def process_tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and every live descendant (Linux /proc)."""
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rfind(")") + 2:].split()  # the name may hold spaces and parentheses
        parents[int(entry)] = int(fields[1])
        used[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += used.get(current, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == current)
    return total


WINDOW_S = 10.0
# The monitor's sweep runs as often as in a deployment (Settings' default), so the bench pays
# for the same background work per second as production does; an operator's own
# LIFELINE_SWEEP_INTERVAL still wins.
DEPLOYED_SWEEP_INTERVAL_S = Settings.sweep_interval_s


def sweep_interval_s() -> float:
    """The sweep interval the app under test runs with (LIFELINE_SWEEP_INTERVAL, else the default)."""
    return float(os.environ.get("LIFELINE_SWEEP_INTERVAL") or DEPLOYED_SWEEP_INTERVAL_S)


def ack_by_window(results: list[CallResult], started: float, window_s: float) -> list[dict[str, Any]]:
    """Webhook acknowledgements per `window_s` of the run (by when each was sent): the first wave
    of calls arrives in a burst over the ramp, so its windows can differ from the steady state."""
    windows: dict[int, list[float]] = {}
    for result in results:
        for entry in result.leg.log.timeline:
            if entry["kind"] == "webhook" and 200 <= entry["status"] < 300:
                sent_s = result.leg.log.t0 - started + entry["t_ms"] / 1000
                windows.setdefault(int(max(0.0, sent_s) // window_s), []).append(entry["ack_ms"])
    return [{"from_s": index * window_s, "webhooks": len(acks), "p50": percentile(acks, .5),
             "p95": percentile(acks, .95), "p99": percentile(acks, .99)}
            for index, acks in sorted(windows.items())]


ACK_METRIC = "lifeline_webhook_ack_seconds"
ESCALATION_METRIC = "lifeline_escalation_latency_seconds"
_BUCKET_LINE = re.compile(r'^(\w+)_bucket\{(?:[^}]*,)?le="([^"]+)"[^}]*\} ([0-9.e+-]+)$')


def histogram_buckets(exposition: str, names: tuple[str, ...]) -> dict[str, dict[float, float]]:
    """Cumulative bucket counts (upper bound -> count) of the named histograms in Prometheus text."""
    found: dict[str, dict[float, float]] = {name: {} for name in names}
    for line in exposition.splitlines():
        match = _BUCKET_LINE.match(line)
        if match and match.group(1) in found:
            bound = float(match.group(2))  # "+Inf" parses as inf
            found[match.group(1)][bound] = found[match.group(1)].get(bound, 0.0) + float(match.group(3))
    return found


def bucket_quantiles(cumulative: dict[float, float]) -> dict[str, float | int | None]:
    """p50/p95/p99 as "at most this many ms" (the bucket bound each quantile falls under), and
    the count; None where there are no observations or the quantile is past the last bound."""
    total = cumulative.get(float("inf"), max(cumulative.values(), default=0.0))
    result: dict[str, float | int | None] = {"count": int(total)}
    for label, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        bound = next((b for b, count in sorted(cumulative.items()) if total and count >= q * total), None)
        result[label] = None if bound is None or bound == float("inf") else round(bound * 1000, 1)
    return result


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def _pin_this_process(cpus: tuple[int, ...]) -> None:
    """Every thread of this process (and those it starts later) on `cpus`."""
    for task in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(task), cpus)
        except OSError:
            pass  # a thread that ended meanwhile


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank) of values, or None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))], 2)


def run_bench(config: BenchConfig, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the benchmark and return its report."""
    scenarios = [load_scenario(p) for p in sorted((PROJECT_ROOT / "examples" / "calls").glob("*.yaml"))]
    if config.engine == "local":
        for scenario in scenarios:
            require_audio(scenario)
    if config.instances > 1:
        if not (config.database_url or "").startswith("postgres"):
            raise BenchUsageError(f"--instances {config.instances} shares one database between instances: "
                                  "add --database-url postgresql://user@host/dbname")
        haproxy_path()  # says how to install HAProxy before anything starts
    own_cpus = os.sched_getaffinity(0)
    if config.generator_cpus and not config.app_cpus:
        # Children inherit this process's CPUs: give the app back all of them explicitly.
        config = dataclasses.replace(config, app_cpus=tuple(sorted(own_cpus)))
    if config.app_cpus and not shutil.which("taskset"):
        raise BenchUsageError("--app-cpus needs taskset (Debian package util-linux)")
    if config.generator_cpus:
        _pin_this_process(config.generator_cpus)
    try:
        return _run_bench(config, scenarios, echo)
    finally:
        if config.generator_cpus:
            _pin_this_process(tuple(own_cpus))


def _check_database(database_url: str) -> None:
    """A --database-url the bench may use: SQLite or PostgreSQL, and holding no calls yet."""
    if not database_url.startswith(("sqlite:///", "postgresql://", "postgresql+psycopg://")):
        raise BenchUsageError(f"--database-url {database_url.split('://')[0]}://… is not SQLite or "
                              "PostgreSQL: give sqlite:///path/bench.db or postgresql://user@host/dbname")
    url = database_url.replace("postgresql://", "postgresql+psycopg://")
    try:
        # Looked at as it is (no migration yet): a database a running Lifeline uses is left untouched.
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                holds_calls = inspect(conn).has_table("calls") and conn.execute(
                    text("SELECT 1 FROM calls LIMIT 1")).first() is not None
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:
        raise BenchUsageError(f"--database-url cannot be opened ({exc.__class__.__name__}): check it "
                              "and that the database server is running") from exc
    if holds_calls:
        # Every call in the bench's database is the bench's: its monitor would resend the
        # commands of real calls to the emulator, which refuses them, and spoil them.
        raise BenchUsageError("--database-url holds calls already: the bench needs a database of its "
                              "own (e.g. `createdb lifeline_bench`), never one a running Lifeline uses")
    try:
        SqlStore(url).close()  # the deploy step (`flask db upgrade`), before any worker starts
    except StoreError as exc:
        raise BenchUsageError(f"--database-url: {exc}") from exc


def _run_bench(config: BenchConfig, scenarios: list[Scenario], echo: Callable[[str], None]) -> dict[str, Any]:
    if config.database_url:
        _check_database(config.database_url)
    rng = random.Random(config.seed)
    workdir = Path(tempfile.mkdtemp(prefix="lifeline-bench-"))
    chaos = Chaos(config.chaos, seed=config.seed) if config.chaos else None
    speed = 1.0 if config.engine == "local" else config.speed
    twilio = config.provider == "twilio"
    emulator: Any = TwilioEmulator(speed=speed, chaos=chaos) if twilio else Emulator(speed=speed, chaos=chaos)
    emulator_server = ServerThread((twilio_emulator_app if twilio else emulator_app)(emulator)).start()
    emulator.base_url = emulator_server.url
    database_url = config.database_url or f"sqlite:///{workdir / 'bench.db'}"
    if not config.database_url:  # the deploy step (`flask db upgrade`), before any worker starts
        SqlStore(database_url).close()
    front = Front(config, emulator, database_url, workdir, echo)
    results: list[tuple[CallResult, bool]] = []
    try:
        front.start()
        if twilio:
            emulator.app_url = front.url
        else:
            emulator.webhook_url = f"{front.url}/webhooks/telnyx"
        started = time.monotonic()
        # CPU is counted from here (the app's start-up and model loading are not per-call work).
        app_cpu_before, own_cpu_before = front.cpu_s(), _own_cpu_s()
        plan = [_maybe_hang_up_early(scenarios[i % len(scenarios)], chaos is not None, rng)
                for i in range(config.calls)]
        step = max(1, config.calls // 20)
        # The first wave starts spread over ramp_s (real traffic does not arrive in one instant);
        # after it, each caller slot starts its next call as soon as the previous one ends.
        gap = config.ramp_s / config.concurrency

        def call(index: int, scenario: Scenario, cut: bool) -> tuple[CallResult, bool]:
            if index < config.concurrency:
                time.sleep(index * gap)
            return play(emulator, scenario, caller_number(index)), cut

        with ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="caller") as pool:
            futures = [pool.submit(call, i, s, cut) for i, (s, cut) in enumerate(plan)]
            for done, future in enumerate(as_completed(futures), start=1):
                results.append(future.result())
                if done % step == 0 or done == config.calls:
                    echo(f"  {done}/{config.calls} calls, {time.monotonic() - started:.0f} s")
        app_cpu_s, generator_cpu_s = front.cpu_s() - app_cpu_before, _own_cpu_s() - own_cpu_before
        app_side = front.app_side_latency()
        unclosed = _wait_until_closed(database_url, [r for r, _ in results], timeout_s=30)
    finally:
        front.stop()
        emulator_server.stop()
        emulator.close()
    report = _report(config, results, unclosed, front.log_paths, time.monotonic() - started)
    report["ack_ms_by_window"] = ack_by_window([r for r, _ in results], started, WINDOW_S)
    report["requests_per_instance"] = front.requests_per_instance()
    # The same latencies as the app measured them (its Prometheus histograms): from the moment
    # Flask has the webhook, so without the load generator's own delays (a caller thread waiting
    # for the GIL of this process before it can stop its clock), nor the front's queue.
    report["app_side"] = app_side
    # What the run cost: the app's own CPU per acknowledged webhook says how heavy the app is
    # whatever else shares the machine; the generator's CPU is what it took from the same cores.
    report["cpu"] = {
        "app_cpus": list(config.app_cpus) if config.app_cpus else None,
        "app_affinity_seen": front.affinity,
        "generator_cpus": list(config.generator_cpus) if config.generator_cpus else None,
        "app_cpu_s": round(app_cpu_s, 2), "generator_cpu_s": round(generator_cpu_s, 2),
        "app_cpu_ms_per_webhook": (round(1000 * app_cpu_s / report["webhooks"], 2) if report["webhooks"]
                                   else None),
    }
    # The strict Telnyx emulator's verdicts: bodies the SDK's types refuse, webhooks off the SDK's
    # models. The Twilio emulator checks TwiML by parsing it instead, so it has no such counts.
    strict = isinstance(emulator, Emulator)
    report["refused_commands"] = len(emulator.refused) if strict else None
    report["webhook_model_problems"] = len(emulator.webhook_problems) if strict else None
    if report["app_log_problems"]:
        kept = Path("out")
        kept.mkdir(exist_ok=True)
        report["app_logs"] = []
        for index, path in enumerate(front.log_paths, start=1):
            if path.exists():
                target = kept / (f"bench-app-{index}.log" if len(front.log_paths) > 1 else "bench-app.log")
                shutil.copy(path, target)
                report["app_logs"].append(str(target))
    shutil.rmtree(workdir, ignore_errors=True)
    return report


class Front:
    """What the emulator talks to: one gunicorn instance, or N of them behind HAProxy."""

    def __init__(self, config: BenchConfig, emulator: Emulator | TwilioEmulator, database_url: str,
                 workdir: Path, echo: Callable[[str], None]) -> None:
        self._config = config
        self._emulator = emulator
        self._database_url = database_url
        self._workdir = workdir
        self._echo = echo
        self._apps: list[subprocess.Popen[bytes]] = []
        self._haproxy: HAProxy | None = None
        self.log_paths: list[Path] = []
        self.url = ""
        self.affinity: list[int] | None = None  # the CPUs the first instance was seen to run on
        self._ports: list[int] = []
        self._metrics_token = secrets.token_urlsafe(24)

    def start(self) -> None:
        """Start the instances (and HAProxy in front of several); `stop` stops what started."""
        count = self._config.instances
        ports = [_free_port() for _ in range(count)]
        front_port = _free_port() if count > 1 else ports[0]
        self.url = f"http://127.0.0.1:{front_port}"
        # Media stream URLs must point where Telnyx connects: the front, never one instance.
        env = {"LIFELINE_LOG_FORMAT": "json", "LIFELINE_PUBLIC_URL": self.url,
               "LIFELINE_METRICS_TOKEN": self._metrics_token}
        self._ports = ports
        for index, port in enumerate(ports, start=1):
            log_path = self._workdir / (f"app-{index}.log" if count > 1 else "app.log")
            self.log_paths.append(log_path)
            self._apps.append(_start_gunicorn(self._config, self._emulator, port, self._database_url,
                                              log_path, self._echo, extra_env=env))
        self.affinity = sorted(os.sched_getaffinity(self._apps[0].pid))
        if count > 1:
            self._echo(f"starting haproxy on {self.url} in front of {count} instances...")
            self._haproxy = HAProxy(front_port, ports, self._workdir).start()

    def app_side_latency(self) -> dict[str, Any]:
        """Webhook acknowledgement and escalation latency from the app's own histograms (summed
        over the instances): per quantile, the upper bound of the bucket it falls in."""
        buckets: dict[str, dict[float, float]] = {ACK_METRIC: {}, ESCALATION_METRIC: {}}
        for port in self._ports:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10,
                                   headers={"Authorization": f"Bearer {self._metrics_token}"})
            except httpx.HTTPError as exc:
                return {"error": f"metrics of 127.0.0.1:{port} unreadable: {exc}"}
            for name, counts in histogram_buckets(answer.text, tuple(buckets)).items():
                for bound, count in counts.items():
                    buckets[name][bound] = buckets[name].get(bound, 0.0) + count
        return {"webhook_ack_ms_at_most": bucket_quantiles(buckets[ACK_METRIC]),
                "escalation_ms_at_most": bucket_quantiles(buckets[ESCALATION_METRIC])}

    def cpu_s(self) -> float:
        """CPU seconds used so far by every instance (gunicorn's master and workers)."""
        return sum(process_tree_cpu_s(app.pid) for app in self._apps)

    def requests_per_instance(self) -> list[int] | None:
        """Requests HAProxy passed to each instance (None with one instance and no HAProxy)."""
        return self._haproxy.requests_per_instance() if self._haproxy is not None else None

    def stop(self) -> None:
        """Stop HAProxy, then every instance."""
        if self._haproxy is not None:
            self._haproxy.stop()
        for app in self._apps:
            _stop(app)


def _maybe_hang_up_early(scenario: Scenario, chaos: bool, rng: random.Random) -> tuple[Scenario, bool]:
    """The scenario, or (chaos) a caller who hangs up after a random turn; True when cut short."""
    if not chaos or rng.random() > 0.15:
        return scenario, False
    cut = rng.randint(1, len(scenario.turns))
    turns = scenario.turns[:cut] + (Turn("hangup", True),)
    return dataclasses.replace(scenario, turns=turns), True


def _provider_env(emulator: Emulator | TwilioEmulator, engine: str) -> dict[str, str]:
    """The settings pointing the app at the emulator of the provider under test."""
    if isinstance(emulator, TwilioEmulator):
        return {**twilio_side_telnyx(engine), **emulator.app_settings()}
    return {"TELNYX_API_KEY": emulator.api_key, "TELNYX_PUBLIC_KEY": emulator.public_key_b64,
            "TELNYX_API_BASE_URL": f"{emulator.base_url}/v2"}


def _start_gunicorn(config: BenchConfig, emulator: Emulator | TwilioEmulator, port: int, database_url: str,
                    log_path: Path, echo: Callable[[str], None],
                    extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start one app instance on `port` as deployed (gunicorn.conf.py); return once /healthz answers.

    `extra_env` wins over the settings given here (e.g. LIFELINE_MONITOR, or LIFELINE_MEDIA_URL
    for an instance whose media sockets another instance serves)."""
    env = {**os.environ, **_provider_env(emulator, config.engine),
           "LIFELINE_PUBLIC_URL": f"http://127.0.0.1:{port}",
           "LIFELINE_ENGINE": config.engine, "LIFELINE_AGENTS": AGENTS, "DATABASE_URL": database_url,
           "LIFELINE_MONITOR": "on", "LIFELINE_SWEEP_INTERVAL": f"{sweep_interval_s():g}",
           **(extra_env or {})}
    if config.chaos:
        env["LIFELINE_COMMAND_TIMEOUT"] = "1"
    command = [sys.executable, "-m", "gunicorn", "--config", str(PROJECT_ROOT / "gunicorn.conf.py"),
               "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--error-logfile", str(log_path)]
    if config.app_cpus:
        command = ["taskset", "--cpu-list", ",".join(map(str, config.app_cpus)), *command]
    if config.workers:
        command += ["--workers", str(config.workers)]
    if config.threads:
        command += ["--threads", str(config.threads)]
    with log_path.open("ab") as log:
        process = subprocess.Popen([*command, "app:app"], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log)
    echo(f"starting gunicorn on 127.0.0.1:{port} ({config.provider}, {config.engine} engine, "
         f"sweep every {sweep_interval_s():g} s)...")
    if wait_healthy(process, f"http://127.0.0.1:{port}", log_path, "gunicorn", 90):
        return process
    _stop(process)
    raise RuntimeError("gunicorn did not become healthy within 90 s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()  # reap it: a loaded machine can take longer than 20 s to drain


def _wait_until_closed(database_url: str, results: list[CallResult], timeout_s: float) -> int:
    """Calls still open in the app's store once the callers are done (the monitor gets a chance)."""
    ids = [r.leg.call_control_id for r in results]
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            with engine.connect() as conn:
                open_ids = {row[0] for row in conn.execute(text("SELECT call_control_id FROM calls "
                                                                "WHERE status != 'ended'"))}
            unclosed = sum(1 for i in ids if i in open_ids)
            if unclosed == 0 or time.monotonic() > deadline:
                return unclosed
            time.sleep(1)
    finally:
        engine.dispose()


def missed_escalation(result: CallResult, cut_short: bool) -> bool:
    """A caller who needed a person, was served and stayed to the end of the script (then held on
    for `PATIENCE_S`), yet no transfer was commanded."""
    return (result.scenario.expect.transfer is True and not cut_short and result.served
            and not result.transfer_commands)


def app_log_problems(paths: list[Path]) -> tuple[list[str], dict[str, int]]:
    """The error records of the app's JSON logs (level ERROR or CRITICAL), plus any line outside
    the JSON records that reports a failure; and how many error records each logger wrote."""
    problems: list[str] = []
    by_logger: dict[str, int] = {}
    for path in paths:
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        for line in lines:
            record = _json_record(line)
            if record is None:
                if _UNSTRUCTURED_PROBLEM.search(line):
                    problems.append(line)
                continue
            if str(record.get("level")) in _LOG_ERROR_LEVELS:
                logger = str(record.get("logger"))
                by_logger[logger] = by_logger.get(logger, 0) + 1
                problems.append(f"{record.get('level')} {logger} call={record.get('call_id')} "
                                f"{record.get('message')}")
    return problems, by_logger


def _json_record(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and "level" in record else None


def _report(config: BenchConfig, played: list[tuple[CallResult, bool]], unclosed: int, log_paths: list[Path],
            elapsed: float) -> dict[str, Any]:
    results = [r for r, _ in played]
    latencies = [r.leg.log.escalation_latency_ms for r in results
                 if r.transfer_commands and r.leg.log.escalation_latency_ms is not None]
    # For audio, the same latency counted from the true end of the words instead of the last frame.
    from_true_end = [r.leg.log.escalation_latency_ms + r.leg.log.trigger_trailing_silence_s * 1000
                     for r in results if r.transfer_commands and r.leg.log.escalation_latency_ms is not None
                     and r.leg.log.trigger_trailing_silence_s]
    deliveries = [e for r in results for e in r.leg.log.timeline if e["kind"] == "webhook"]
    acks = [e["ack_ms"] for e in deliveries if 200 <= e["status"] < 300]
    server_errors = sum(1 for e in deliveries if e["status"] >= 500)
    unacknowledged = sum(r.leg.log.webhook_failures for r in results)
    doubles = sum(1 for r in results
                  if len({t["to"] for t in r.transfer_commands}) != len(r.transfer_commands))
    # A caller who never got a menu (or an answer) was not served: overload, not success.
    stuck = [r for r in results if not r.served]
    missed = [r for r, cut in played if missed_escalation(r, cut)]
    problems, by_logger = app_log_problems(log_paths)
    return {
        "provider": config.provider, "engine": config.engine, "calls": len(results),
        "concurrency": config.concurrency,
        "ramp_s": config.ramp_s, "workers": config.workers, "threads": config.threads,
        "instances": config.instances,
        "chaos": config.chaos, "speed": 1.0 if config.engine == "local" else config.speed,
        "database": "postgresql" if (config.database_url or "").startswith("postgres") else "sqlite",
        "sweep_interval_s": sweep_interval_s(),
        "elapsed_s": round(elapsed, 1),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "escalations": len(latencies),
        "escalation_latency_ms": {"p50": percentile(latencies, .5), "p95": percentile(latencies, .95),
                                  "p99": percentile(latencies, .99)},
        "escalation_from_true_end_ms": {"p50": percentile(from_true_end, .5),
                                        "p95": percentile(from_true_end, .95),
                                        "max": round(max(from_true_end), 1) if from_true_end else None},
        "webhooks": len(acks),
        "ack_ms": {"p50": percentile(acks, .5), "p95": percentile(acks, .95), "p99": percentile(acks, .99)},
        # Everything that went wrong: each 5xx answer, each webhook never acknowledged, each caller
        # left without a menu or without the person they needed, each error the app logged.
        "errors": unacknowledged + server_errors + len(stuck) + len(missed) + len(problems),
        "webhooks_unacknowledged": unacknowledged,
        "http_5xx": server_errors,
        "calls_without_menu": len(stuck),
        "missed_escalations": len(missed),
        "missed_sample": [r.scenario.name for r in missed[:5]],
        "late_escalations": sum(1 for r in results if r.late),
        "double_transfers": doubles,
        "calls_not_closed": unclosed,
        "app_log_problems": len(problems),
        "app_log_errors_by_logger": by_logger,
        "app_log_sample": problems[:5],
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_json(report: dict[str, Any], path: Path) -> None:
    """Save the report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
