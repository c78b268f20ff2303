"""The console's pages: sign-in, live calls, history, one call; and the call page's two actions."""

from __future__ import annotations

import io
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from werkzeug.wrappers import Response

from lifeline.conversation import transcripts
from lifeline.conversation.pause import PauseError
from lifeline.conversation.summaries import SETTLE_GRACE_S, summary_due
from lifeline.ivr.recording_sinks import SinkError, audio_format
from lifeline.ivr.sanitize import clean_text, whole_number
from lifeline.ivr.sessions import close_session, csrf_ok, csrf_token, open_session, signed_in, token_matches
from lifeline.ivr.store import CallQuery, CallRecord, CallStore
from lifeline.ivr.throttle import client_of, throttle_of

from . import names, reading
from .charts import sentiment_chart
from .live import snapshot

log = logging.getLogger(__name__)

bp = Blueprint("console", __name__, template_folder="templates", static_folder="static",
               static_url_path="/dashboard/static")

PAGE_SIZE = 25
TEXT_MAX = 200
# Only our own files: no inline script or style, no other origin, no framing, forms post here only.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "media-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
_OPEN = {"console.sign_in", "console.static"}


def _expected_token() -> str | None:
    token: str | None = current_app.extensions["lifeline"].settings.api_token
    return token


@bp.before_request
def gate() -> ResponseReturnValue | None:
    """Every page but the sign-in form and our static files needs a session."""
    expected = _expected_token()
    if request.endpoint == "console.static":
        return None
    if not expected:
        return render_template("console/signin.html", error="The console is off: set LIFELINE_API_TOKEN.",
                               next=None), 403
    if request.endpoint in _OPEN or signed_in(expected, _store().session_revoked):
        return None
    if request.method == "GET":  # back to the same page, its filters included, once signed in
        return render_template("console/signin.html", error=None,
                               next=request.full_path if request.query_string else request.path)
    return render_template("console/signin.html", error="Sign in first.", next=None), 403


@bp.after_request
def security_headers(response: Response) -> Response:
    """A strict policy on every console response: caller text can never run as script."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    if request.endpoint != "console.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_template_filter("when")
def when(epoch: float | None) -> Markup:
    """A <time> element: ISO-8601 for machines (and the script, which shows local time), UTC text."""
    if epoch is None:
        return Markup("")
    moment = datetime.fromtimestamp(epoch, UTC)
    return Markup('<time datetime="{}">{}</time>').format(
        moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        moment.strftime("%Y-%m-%d %H:%M:%S UTC"))


@bp.app_template_filter("clock")
def clock(seconds: float | None) -> str:
    """Seconds as m:ss (h:mm:ss past an hour)."""
    total = int(round(seconds or 0.0))
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@bp.app_context_processor
def helpers() -> dict[str, Any]:
    """What every console template may use."""
    return {"readable": names.readable, "csrf_token": csrf_token}


@bp.get("/dashboard")
def live() -> ResponseReturnValue:
    """Live calls, most in need of attention first (the page's script follows the feed)."""
    outputs = current_app.extensions["conversation"]
    bar, _ = reading.intent_bar(current_app.extensions["lifeline"].services.rules.rules)
    boot = {"snapshot": snapshot(outputs.store), "names": names.for_script(), "intent_bar": bar}
    return render_template("console/live.html", page="live", boot=boot)


@bp.get("/dashboard/history")
def history() -> ResponseReturnValue:
    """Past and present calls: search by words or number, filter by outcome, rule and dates."""
    lifeline = current_app.extensions["lifeline"]
    form = {k: request.args.get(k, "").strip() for k in ("q", "outcome", "rule", "from", "to")}
    problems: list[str] = []
    query = _query(form, problems)
    page_no = _page_number(problems)
    status = 400 if problems else 200
    found = lifeline.store.search_calls(CallQuery(**{**query, "offset": (page_no - 1) * PAGE_SIZE,
                                                     "limit": PAGE_SIZE})) if not problems else None
    # The rules of the file, and any other one on screen or asked for (from an older rules file).
    rules = sorted({rule.name for rule in lifeline.services.rules.rules} | {form["rule"]} - {""}
                   | set(found.rules.values() if found else ()))
    pages = max(1, -(-found.total // PAGE_SIZE)) if found else 1
    return render_template("console/history.html", page="history", form=form, problems=problems, found=found,
                           page_no=page_no, pages=pages, page_size=PAGE_SIZE, rules=rules,
                           outcomes=list(names.OUTCOME), link=_page_link), status


def _query(form: dict[str, str], problems: list[str]) -> dict[str, Any]:
    query: dict[str, Any] = {"text": clean_text(form["q"])[:TEXT_MAX] or None,
                             "outcome": form["outcome"] or None, "rule": form["rule"] or None}
    if query["outcome"] and query["outcome"] not in names.OUTCOME:
        problems.append(f"unknown outcome {form['outcome']!r}: choose one of the list")
    for key, bound, shift in (("from", "since", 0), ("to", "until", 1)):
        if form[key]:
            try:
                day = datetime.strptime(form[key], "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError:
                problems.append(f"{key} must be a date as YYYY-MM-DD, not {form[key]!r}")
                continue
            try:
                query[bound] = (day + timedelta(days=shift)).timestamp()  # `to` includes its whole day
            except OverflowError:  # the day after 9999-12-31: no call is that late
                query[bound] = None if shift else day.timestamp()
    return query


def _page_number(problems: list[str]) -> int:
    raw = request.args.get("page", "1")
    page = whole_number(raw)
    if page is not None and 1 <= page <= 100_000:
        return page
    problems.append(f"page must be a whole number from 1 to 100000, not {raw!r}")
    return 1


def _page_link(form: dict[str, str], page_no: int) -> str:
    values: dict[str, Any] = {k: v for k, v in form.items() if v}
    return url_for("console.history", page=page_no, **values)


@bp.get("/dashboard/calls/<call_control_id>")
def call_page(call_control_id: str) -> ResponseReturnValue:
    """One call: transcript of both parties, sentiment over time, decision, transfers, recording, summary."""
    lifeline, outputs = current_app.extensions["lifeline"], current_app.extensions["conversation"]
    after = outputs.store.feed_last_id()  # first: what is stored after this reaches the page as an event
    call = _find(call_control_id)
    if call is None:
        return render_template("console/missing.html", page="call", call_control_id=call_control_id), 404
    doc = transcripts.transcript(call, outputs.store)
    rules = lifeline.services.rules.rules
    bar, bar_rule = reading.intent_bar(rules)
    decisions = lifeline.store.decisions(call.call_control_id)
    _read_lines(doc["messages"], call.call_control_id, bar, decisions)
    for d in decisions:
        for e in d.get("evidence") or []:
            e["reading"] = reading.read(e, bar)
    end = call.ended_at or max([call.updated_at] + [float(m.get("end") or 0) + call.created_at
                                                    for m in doc["messages"]])
    duration = end - call.created_at
    summary = outputs.summaries.get(call.call_control_id)
    # An ended call's summary waits for words still being transcribed at the hang-up.
    summary_soon = (summary is None and call.ended_at is not None
                    and time.time() - call.ended_at < outputs.settings.transcript_settle_s + SETTLE_GRACE_S)
    return render_template(
        "console/call.html", page="call", call=call, transcript=doc, duration=duration,
        chart=sentiment_chart(doc["messages"], duration), bar=bar, bar_rule=bar_rule,
        score_rules=reading.score_rules(rules), decisions=decisions,
        transfers=lifeline.store.transfers(call.call_control_id),
        summary=summary["summary"] if summary else None,
        email=summary["email"] if summary else None, summary_soon=summary_soon,
        summary_due=summary_due(outputs.settings.transcript_settle_s),
        recording=_has_recording(call),
        boot={"call": call.call_control_id, "after": after, "active": call.is_active})


def _read_lines(messages: list[dict[str, Any]], call_control_id: str, bar: float,
                decisions: list[dict[str, Any]]) -> None:
    """Give each line its `reading` (a caller's line: what the rules read), its intents' names
    for a line with no analysis, and `decided` when a decision kept it as evidence."""
    kept = {e.get("source_id") for d in decisions for e in d.get("evidence") or []} - {None}
    # Lines stored before the feed carried the analysis: the messages table has kept it since 0003.
    stored: dict[str, Any] = {}
    if any(m["party"] == "caller" and m.get("analysis") is None for m in messages):
        stored = {r["source_id"]: r.get("analysis") for r in _store().messages(call_control_id)}
    for m in messages:
        analysis = m.get("analysis") or (stored.get(m.get("source_id") or "") if m["party"] == "caller"
                                         else None)
        m["reading"] = reading.read(analysis, bar)
        m["intent_names"] = [names.readable("intent", i) for i in m.get("intents") or []]
        m["decided"] = m.get("source_id") in kept


@bp.get("/dashboard/calls/<call_control_id>/recording")
def recording(call_control_id: str) -> ResponseReturnValue:
    """The call's kept voicemail recording (audio), for the call page's player."""
    call = _find(call_control_id)
    audio = _recording_audio(call)
    if audio is None:
        return render_template("console/missing.html", page="call", call_control_id=call_control_id), 404
    extension, mime = audio_format(audio)
    return send_file(io.BytesIO(audio), mimetype=mime, conditional=True,
                     download_name=f"recording.{extension}")


@bp.post("/dashboard/calls/<call_control_id>/listening")
def listening(call_control_id: str) -> ResponseReturnValue:
    """Pause or resume listening from the call page (a form with the session's CSRF token)."""
    if not csrf_ok(request.form.get("csrf")):
        # The gate let this request through, so the browser is signed in: most likely the page came
        # from before a later sign-in (in another tab), whose form carries the earlier session's token.
        return render_template("console/notice.html", page=None, heading="Nothing was changed",
                               message="That call page was opened before your last sign-in, so its "
                                       "button was refused and listening is as it was. Open the call "
                                       "again and press it there.",
                               back=url_for("console.call_page", call_control_id=call_control_id),
                               back_text="Open the call again"), 403
    paused = request.form.get("paused")
    if paused not in ("1", "0"):
        return render_template("console/missing.html", page="call", call_control_id=call_control_id,
                               problem="send paused=1 or paused=0"), 400
    try:
        control = current_app.extensions["conversation"].control
        control.set_paused(call_control_id, paused == "1", by="console")
    except PauseError as exc:
        return render_template("console/missing.html", page="call", call_control_id=call_control_id,
                               problem=str(exc)), exc.status
    return redirect(url_for("console.call_page", call_control_id=call_control_id, _anchor="listening"),
                    code=303)


@bp.get("/dashboard/<path:unknown>")
def no_such_page(unknown: str) -> ResponseReturnValue:
    """A console address that is no page: a page saying so, not the API's JSON."""
    return render_template("console/notice.html", page=None, heading="No such page",
                           message=f"The console has no page at /dashboard/{unknown[:100]}.", back=None), 404


@bp.post("/dashboard/signin")
def sign_in() -> ResponseReturnValue:
    """Check the token from the form and open a session; 403 and the form again if it is wrong."""
    expected = _expected_token()
    given = request.form.get("token", "")
    throttle = throttle_of(current_app.extensions["lifeline"].settings, _store())
    wait = throttle.retry_after(client_of(request)) if expected else None
    if wait is not None:  # asked before the token is compared, as the API does
        page = render_template("console/signin.html", next=None,
                               error=f"Too many wrong tokens were tried from your address. Try again in "
                                     f"{_minutes(wait)}.")
        return page, 429, {"Retry-After": str(wait)}
    if not expected or not token_matches(given, expected):
        if expected:
            throttle.failed(client_of(request))
        return render_template("console/signin.html", error="Wrong token.", next=None), 403
    open_session(expected, _store().revoke_session)
    target = request.form.get("next", "")
    # Only a page of the console: never another site, never a scheme-relative //host, and
    # nothing a Location header cannot carry (a line break from a crafted link).
    if not (target.startswith("/dashboard") and not target.startswith("//") and "\\" not in target
            and target.isprintable()):
        target = url_for("console.live")
    return redirect(target, code=303)


@bp.post("/dashboard/signout")
def sign_out() -> ResponseReturnValue:
    """Close the session (the form carries the CSRF token: nobody else can sign you out)."""
    if not csrf_ok(request.form.get("csrf")):
        # The gate let this request through, so the browser is signed in: most likely this page
        # came from before a later sign-in, whose form carries the earlier session's token. Say
        # so, with a sign-out that works (the header's form here has this session's token).
        return render_template("console/notice.html", page=None, heading="Still signed in",
                               message="That page was opened before your last sign-in, so its "
                                       "Sign out was refused. You are still signed in: press "
                                       "Sign out above to sign out.", back=None), 403
    close_session(_store().revoke_session)
    return redirect(url_for("console.live"), code=303)


def _minutes(seconds: int) -> str:
    """A wait in words: seconds under two minutes, else whole minutes (rounded up)."""
    return f"{seconds} seconds" if seconds < 120 else f"{-(-seconds // 60)} minutes"


def _store() -> CallStore:
    store: CallStore = current_app.extensions["lifeline"].store
    return store


def _find(call_control_id: str) -> CallRecord | None:
    call: CallRecord | None = _store().get_call(call_control_id)
    return call


def _has_recording(call: CallRecord | None) -> bool:
    """Whether the call has a kept recording to offer (read only when the player asks for it)."""
    return call is not None and call.recording_status == "kept" and bool(call.recording_path)


def _recording_audio(call: CallRecord | None) -> bytes | None:
    """The kept recording's bytes, from wherever the recordings sink keeps them (a directory or a
    bucket); the sink refuses a location that is not its own, e.g. a path outside its directory."""
    if call is None or not _has_recording(call):
        return None
    keeper = current_app.extensions["lifeline"].services.recordings
    if keeper is None:
        return None
    try:
        audio: bytes = keeper.sink.get(call.recording_path)
    except SinkError as exc:
        log.warning("recording of %s not served: %s", call.call_control_id, exc)
        return None
    return audio
