"""`flask simulate`: play caller scenarios against the app and the built-in emulator."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from lifeline.ivr.config import ENGINES
from lifeline.startup import bind_problem

from .caller import CallResult
from .external import ExternalAppError, ExternalRun
from .report import print_call, report_json
from .runner import Simulation, access_line
from .scenario import ScenarioError, load_scenarios

EXTERNAL_EMULATOR_PORT = 8001  # where the emulator serves for --app-url, unless --emulator-port says
# The emulator can stand in for Telnyx, not for Symbl's service.
SIMULATED_ENGINES = [name for name in ENGINES if name != "symbl"]


@click.command("simulate")
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--engine", type=click.Choice(SIMULATED_ENGINES), default="telnyx", show_default=True,
              help="How the app hears the caller (telnyx, twilio: the provider's own transcription).")
@click.option("--provider", type=click.Choice(["telnyx", "twilio"]), default="telnyx", show_default=True,
              help="Which provider's emulator the calls come through.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report as JSON to this file.")
@click.option("--concurrency", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Calls in progress at once.")
@click.option("--speed", type=click.FloatRange(0.1, 100.0), default=1.0, show_default=True,
              help="Run time faster than real time (speech, rings, pauses); latencies stay real.")
@click.option("--quiet", is_flag=True, help="Print verdicts only, not timelines.")
@click.option("--app-url", help="Call a Lifeline you run yourself at this URL (gunicorn, your database) "
                                "instead of one started here; it must be started with the emulator's "
                                "settings, which are printed (with --provider twilio, Twilio's).")
@click.option("--port", type=click.IntRange(1, 65535),
              help="The loopback port the app under simulation serves on (default: any free one); "
                   "not with --app-url, whose app serves where you started it.")
@click.option("--emulator-port", type=click.IntRange(1, 65535),
              help="The loopback port the emulator serves the provider's API on (default: 8001 with "
                   "--app-url, else any free one).")
@with_appcontext
def simulate(scenarios: tuple[Path, ...], engine: str, provider: str, json_out: Path | None,
             concurrency: int, speed: float, quiet: bool, app_url: str | None, port: int | None,
             emulator_port: int | None) -> None:
    """Play SCENARIOS (YAML files, or folders of them) against this app and the built-in emulator."""
    try:
        loaded = load_scenarios(scenarios, engine)
    except ScenarioError as exc:
        raise click.UsageError(str(exc)) from exc
    settings = current_app.extensions["lifeline"].settings
    done = 0

    def show(result: CallResult) -> None:
        nonlocal done
        done += 1
        print_call(result, click.echo, timeline=not quiet)
        click.echo(f"  [{done}/{len(loaded)}]")

    if app_url and port is not None:
        raise click.UsageError("--port chooses where the app started here serves; with --app-url the "
                               "app is yours: start it on the port you want")
    if app_url:
        emulator_port = emulator_port or EXTERNAL_EMULATOR_PORT
        click.echo(f"Simulating {len(loaded)} call(s) on the Lifeline at {app_url} "
                   f"(concurrency {concurrency}, speed x{speed:g})")
        try:
            with ExternalRun(app_url, emulator_port, Path.cwd() / "instance", speed,
                             settings.api_token, provider=provider) as run:
                click.echo("The emulator's settings, for the app: " +
                           " ".join(f"{k}={v}" for k, v in run.settings().items()))
                run.check_app()
                results = run.run(loaded, concurrency=concurrency, on_result=show)
                for problem in run.stream_problems():
                    click.echo(f"warning: {problem}", err=True)
        except ExternalAppError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # the emulator's port
            raise click.ClickException(f"the emulator cannot listen on 127.0.0.1:{emulator_port} "
                                       f"({exc.strerror}): choose another --emulator-port") from None
    else:
        config = {"LIFELINE_AGENTS": ",".join(settings.agents), "LIFELINE_IVR": str(settings.ivr_path),
                  "LIFELINE_RULES": str(settings.rules_path)}
        click.echo(f"Simulating {len(loaded)} call(s) on {provider} with the {engine} engine "
                   f"(concurrency {concurrency}, speed x{speed:g})")
        for option, chosen in (("--port", port), ("--emulator-port", emulator_port)):
            taken = bind_problem("127.0.0.1", chosen) if chosen else None
            if taken:
                raise click.ClickException(f"cannot serve on 127.0.0.1:{chosen} ({taken}): another program "
                                           f"has it; choose another {option}")
        with Simulation(config, engine=engine, speed=speed, provider=provider, app_port=port or 0,
                        emulator_port=emulator_port or 0) as sim:
            # A loopback port of its own each run: say where to watch (or pause) the calls, and with what.
            click.echo("Lifeline under simulation: " + access_line(
                sim.url, sim.api_token if sim.token_made else None, "up while the calls run"))
            results = sim.run(loaded, concurrency=concurrency, on_result=show)
    report = report_json(results, engine)
    summary = report["summary"]
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2))
        click.echo(f"JSON report written to {json_out}")
    scores = summary.get("quality")
    if scores:
        # A figure with nothing to count (no caller who needs a person, say) is "n/a", not None.
        shown = {k: "n/a" if v is None else v for k, v in scores.items()}
        click.echo(f"\nEscalation: precision {shown['precision']}, recall {shown['recall']} "
                   f"(TP {shown['true_positive']}, FP {shown['false_positive']}, "
                   f"FN {shown['false_negative']}, TN {shown['true_negative']}); "
                   f"median says before transfer {shown['median_says_before_transfer']}, "
                   f"on time {shown['on_time']}")
    click.echo(f"\n{summary['passed']} passed, {summary['failed']} failed")
    for result in results:
        if not result.passed:  # repeated here: with callers interleaved, their FAIL lines are far up
            click.echo(f"  FAIL {result.scenario.name} ({result.scenario.path}): "
                       f"{'; '.join(result.problems)}")
    if summary["failed"]:
        raise SystemExit(1)


@click.command("bench")
@click.option("--engine", type=click.Choice(SIMULATED_ENGINES), default="telnyx", show_default=True)
@click.option("--provider", type=click.Choice(["telnyx", "twilio"]), default="telnyx", show_default=True)
@click.option("--calls", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 2000), default=10, show_default=True)
@click.option("--chaos", type=click.FloatRange(0.0, 0.5), default=0.0, show_default=True,
              help="Share of webhooks/commands the emulator mistreats (0.1 = 10 %), plus random hang-ups.")
@click.option("--speed", type=click.FloatRange(0.1, 100.0), default=10.0, show_default=True,
              help="Time compression for the telnyx engine (the local engine always runs in real time).")
@click.option("--workers", type=click.IntRange(1, 64), help="gunicorn workers (default: gunicorn.conf.py)")
@click.option("--threads", type=click.IntRange(1, 1000), help="gunicorn threads per worker")
@click.option("--database-url", help="Use this database instead of a fresh SQLite file.")
@click.option("--ramp", type=click.FloatRange(0.0, 600.0), default=10.0, show_default=True,
              help="Seconds over which the first CONCURRENCY calls start.")
@click.option("--instances", type=click.IntRange(1, 8), default=1, show_default=True,
              help="gunicorn instances behind HAProxy (`make haproxy`); more than 1 needs a PostgreSQL "
                   "--database-url.")
@click.option("--app-cpus", metavar="LIST",
              help="Run the app (gunicorn) on these CPUs only, e.g. 0 or 0-1 (taskset).")
@click.option("--generator-cpus", metavar="LIST",
              help="Run the emulator and the callers on these CPUs only, e.g. 1.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path))
def bench(engine: str, provider: str, calls: int, concurrency: int, chaos: float, speed: float,
          workers: int | None, threads: int | None, database_url: str | None, ramp: float, instances: int,
          app_cpus: str | None, generator_cpus: str | None, json_out: Path | None) -> None:
    """Drive generated calls through the app under gunicorn and report latency and correctness."""
    from .bench import BenchConfig, BenchUsageError, parse_cpus, run_bench, write_json
    from .haproxy import HAProxyMissing

    try:
        report = run_bench(BenchConfig(engine=engine, provider=provider, calls=calls, concurrency=concurrency,
                                       chaos=chaos, speed=speed, workers=workers, threads=threads,
                                       database_url=database_url, ramp_s=ramp, instances=instances,
                                       app_cpus=parse_cpus(app_cpus) if app_cpus else None,
                                       generator_cpus=parse_cpus(generator_cpus) if generator_cpus else None),
                           echo=click.echo)
    except (HAProxyMissing, BenchUsageError) as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(json.dumps(report, indent=2))
    if json_out:
        write_json(report, json_out)
        click.echo(f"JSON report written to {json_out}")
    if report["double_transfers"] or report["app_log_problems"] or report["calls_not_closed"] \
            or report["errors"]:
        raise SystemExit(1)


@click.command("feed-bench")
@click.option("--calls", default=200, show_default=True, help="Calls to place.")
@click.option("--concurrency", default=100, show_default=True, help="Calls at once.")
@click.option("--speed", default=10.0, show_default=True, help="Scenario time compression.")
@click.option("--workers", type=int, default=None, help="gunicorn workers (default: gunicorn.conf.py).")
@click.option("--threads", type=int, default=None, help="gunicorn threads per worker.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
              help="Write the report here.")
def feed_bench(calls: int, concurrency: int, speed: float, workers: int | None, threads: int | None,
               json_out: Path | None) -> None:
    """Measure how fast events leave: SSE feed and webhook delays of message events under load."""
    from .feed_bench import run_feed_bench, write_report

    report = run_feed_bench(calls, concurrency, speed, workers, threads, echo=click.echo)
    click.echo(json.dumps(report, indent=2))
    if json_out:
        write_report(report, json_out)
    if report["missing_on_feed"] or report["missing_by_webhook"]:
        raise SystemExit(1)


@click.command("media-drill")
@click.option("--sockets", type=click.IntRange(0, 5000), default=200, show_default=True,
              help="Media sockets held open on live calls.")
@click.option("--streaming", type=click.IntRange(0, 5000), default=100, show_default=True,
              help="Of them, how many send 20 ms frames in real time.")
@click.option("--slow", type=click.IntRange(0, 5000), default=40, show_default=True,
              help="Slow-body connections in the second phase.")
@click.option("--seconds", type=click.FloatRange(5, 600), default=30.0, show_default=True,
              help="Length of each phase.")
@click.option("--workers", type=click.IntRange(1, 64), help="gunicorn workers (default: gunicorn.conf.py)")
@click.option("--threads", type=click.IntRange(1, 1000), help="gunicorn threads per pool")
@click.option("--media-apart", is_flag=True,
              help="Serve media from a second gunicorn on this host (LIFELINE_MEDIA_URL), "
                   "webhooks from the first.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path))
def media_drill(sockets: int, streaming: int, slow: int, seconds: float, workers: int | None,
                threads: int | None, media_apart: bool, json_out: Path | None) -> None:
    """Time webhook acknowledgements while media sockets, then slow bodies, crowd one instance."""
    from .bench import write_json
    from .media_drill import DrillConfig, run_media_drill

    report = run_media_drill(DrillConfig(sockets=sockets, streaming=min(streaming, sockets), slow=slow,
                                         seconds=seconds, workers=workers, threads=threads,
                                         media_apart=media_apart), echo=click.echo)
    click.echo(json.dumps(report, indent=2))
    if json_out:
        write_json(report, json_out)
    if any(report[phase]["failed"] for phase in ("sockets_phase", "slow_body_phase")):
        raise SystemExit(1)


# Commands that run against the built-in emulator (they swap in its credentials).
DEV_COMMANDS = frozenset({"simulate", "bench", "listen-bench", "dev", "evaluate", "feed-bench",
                          "media-drill"})


def register(app: Flask) -> None:
    """Add the simulator's commands to `flask`."""
    from .dev import dev
    from .evaluate import evaluate_command
    from .listen_bench import listen_bench

    app.cli.add_command(evaluate_command)
    app.cli.add_command(simulate)
    app.cli.add_command(listen_bench)
    app.cli.add_command(bench)
    app.cli.add_command(dev)
    app.cli.add_command(feed_bench)
    app.cli.add_command(media_drill)
