"""Prometheus metrics at GET /metrics (the official prometheus_client), behind a token.

Two kinds of figures:
- measured in the process (webhook acknowledgement and escalation latency, transcription
  real-time factor, failed deliveries to Telnyx): under gunicorn every worker writes them to
  PROMETHEUS_MULTIPROC_DIR (set up by gunicorn.conf.py) and a scrape adds the workers up;
- read from the call store at scrape time (calls by state, outcomes, escalations by rule,
  transfer outcomes, outbox depth and age): they describe the whole deployment, so with several
  instances on one database scrape any one of them (or take max() across them).
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterator

from flask import Blueprint, Flask, Response, current_app, g, request
from flask.typing import ResponseReturnValue
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from . import scope
from .errors import error_response, unauthorized
from .sessions import bearer
from .store import CallStore
from .throttle import client_of, throttle_of, too_many_failures

bp = Blueprint("metrics", __name__)
WEBHOOK_ENDPOINT = "webhooks.telnyx_webhook"


class Metrics:
    """The metrics one app measures itself; store figures are read when scraped."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.webhook_ack = Histogram(
            "lifeline_webhook_ack_seconds", "Time from a Telnyx webhook's arrival to its acknowledgement.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0), registry=self.registry)
        self.escalation = Histogram(
            "lifeline_escalation_latency_seconds",
            "Time from the input that fired an escalation rule (webhook or transcript) to Telnyx "
            "accepting the transfer to the first agent.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0), registry=self.registry)
        self.real_time_factor = Histogram(
            "lifeline_transcription_real_time_factor",
            "Recognition time divided by audio duration, per utterance (local engine).",
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0), registry=self.registry)
        self.delivery_failures = Counter(
            "lifeline_outgoing_delivery_failures",
            "Failed deliveries to Telnyx: attempt (one HTTP try failed, retried with the same "
            "command_id), gave_up (all tries failed; the monitor resends), rejected (Telnyx refused).",
            ["target", "kind"], registry=self.registry)
        # Summed over the live workers: a dead worker's streams died with it.
        self.feed_streams = Gauge(
            "lifeline_feed_streams",
            "Live-feed (SSE) streams open now; the console holds one per browser, however many tabs.",
            multiprocess_mode="livesum", registry=self.registry)
        self.retention_purged = Counter(
            "lifeline_retention_purged",
            "What the retention purge (LIFELINE_RETENTION_DAYS) deleted: rows by table (calls, events, "
            "feed, ...) and recordings (files or bucket objects).",
            ["kind"], registry=self.registry)
        self.retention_recording_failures = Counter(
            "lifeline_retention_recording_failures",
            "Recordings of purged calls the sink refused to delete; each is tried again at the next purge.",
            registry=self.registry)

    def feed_streams_changed(self, by: int) -> None:
        """A live-feed stream opened (+1) or ended (-1) in this process."""
        self.feed_streams.inc(by)

    def transcribed(self, recognition_s: float, audio_s: float) -> None:
        """One utterance transcribed (the local engine's on_transcribed hook)."""
        if audio_s > 0:
            self.real_time_factor.observe(recognition_s / audio_s)

    def transfer_accepted(self) -> None:
        """Telnyx accepted the first transfer of an escalation handled in this scope."""
        current = scope.current()
        if current is not None:
            self.escalation.observe(time.monotonic() - current.started)

    def delivery_failed(self, kind: str, count: int = 1, target: str = "telnyx") -> None:
        """Count failed deliveries of one kind."""
        if count > 0:
            self.delivery_failures.labels(target=target, kind=kind).inc(count)

    def purged(self, kind: str, count: int) -> None:
        """The retention purge deleted `count` rows (or recordings) of one kind."""
        if count > 0:
            self.retention_purged.labels(kind=kind).inc(count)

    def recording_not_purged(self) -> None:
        """A purged call's recording could not be deleted this time."""
        self.retention_recording_failures.inc()

    def render(self, store: CallStore) -> bytes:
        """The exposition text: this process's (or all workers') metrics and the store's figures."""
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if folder:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
        else:
            registry = self.registry
        return generate_latest(registry) + generate_latest(_store_registry(store))


def _store_registry(store: CallStore) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    return registry


class StoreCollector:
    """Figures read from the call store at scrape time."""

    def __init__(self, store: CallStore) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        """Calls, outcomes, escalations, transfers and the outbox, as of now."""
        now = time.time()
        figures = self._store.figures()
        active = GaugeMetricFamily("lifeline_calls", "Calls still up, by state.", labels=["state"])
        for state, count in figures.live_by_state.items():
            active.add_metric([state], count)
        yield active
        ended = CounterMetricFamily("lifeline_calls_ended", "Ended calls, by outcome.", labels=["outcome"])
        for outcome, count in figures.ended_by_outcome.items():
            ended.add_metric([outcome], count)
        yield ended
        escalations = CounterMetricFamily("lifeline_escalations", "Escalation decisions, by rule.",
                                          labels=["rule"])
        for rule, count in figures.decisions_by_rule.items():
            escalations.add_metric([rule], count)
        yield escalations
        outcomes = CounterMetricFamily("lifeline_transfers", "Transfer attempts to agents, by outcome "
                                       "(requested and ringing are still open).", labels=["outcome"])
        for status, count in figures.transfers_by_status.items():
            outcomes.add_metric([status], count)
        yield outcomes
        yield GaugeMetricFamily("lifeline_outbox_depth", "Commands to Telnyx not yet delivered.",
                                value=figures.pending_commands)
        yield GaugeMetricFamily("lifeline_outbox_oldest_age_seconds",
                                "Age of the oldest undelivered command (0 when none).",
                                value=(max(0.0, now - oldest)
                                       if (oldest := figures.oldest_pending_at) is not None else 0.0))
        yield GaugeMetricFamily("lifeline_commands_rejected", "Commands Telnyx refused, as recorded.",
                                value=figures.rejected_commands)


def install(app: Flask, metrics: Metrics) -> None:
    """Time webhook acknowledgements and serve /metrics on this app."""

    @app.before_request
    def _start_clock() -> None:
        if request.endpoint == WEBHOOK_ENDPOINT:
            # The webhook's scope: an escalation it causes is timed from this moment.
            g.lifeline_started = time.monotonic()
            g.lifeline_scope = scope.call_scope(None, started=g.lifeline_started)
            g.lifeline_scope.__enter__()

    @app.teardown_request
    def _stop_clock(exc: BaseException | None) -> None:
        held = g.pop("lifeline_scope", None)
        if held is not None:
            metrics.webhook_ack.observe(time.monotonic() - g.pop("lifeline_started"))
            held.__exit__(None, None, None)

    app.register_blueprint(bp)


@bp.get("/metrics")
def metrics_endpoint() -> ResponseReturnValue:
    """Prometheus exposition; `Authorization: Bearer` with the API token or LIFELINE_METRICS_TOKEN."""
    lifeline = current_app.extensions["lifeline"]
    accepted = [t for t in (lifeline.settings.metrics_token, lifeline.settings.api_token) if t]
    if not accepted:
        return error_response(403, "metrics are off: set LIFELINE_METRICS_TOKEN (or LIFELINE_API_TOKEN) "
                                   "and send it as 'Authorization: Bearer <token>'")
    if "token" in request.args:
        # As on the API: a token in a URL is written to access logs, proxies and browser history.
        return error_response(400, "the token is not accepted in the URL: send it as "
                                   "'Authorization: Bearer <token>'")
    given = bearer(request.headers.get("Authorization", ""))
    if given is None:
        return unauthorized("the token is missing: send 'Authorization: Bearer <token>'", token_given=False)
    throttle = throttle_of(lifeline.settings, lifeline.store)
    wait = throttle.retry_after(client_of(request))  # before comparing, as on the API
    if wait is not None:
        return too_many_failures(wait)
    if not any(hmac.compare_digest(given.encode(), t.encode()) for t in accepted):
        throttle.failed(client_of(request))
        return unauthorized("wrong token: send LIFELINE_METRICS_TOKEN or LIFELINE_API_TOKEN as "
                            "'Authorization: Bearer <token>'", token_given=True)
    # content_type, not mimetype: CONTENT_TYPE_LATEST carries its charset, which mimetype would add again.
    return Response(lifeline.metrics.render(lifeline.store), content_type=CONTENT_TYPE_LATEST)
