"""The private parts of gunicorn that lifeline/server.py overrides, calls or reads are still there.

gunicorn's asyncio worker has no extension points, so Lifeline's JSON refusals, header deadline and
connection cap hang on its private names. An upgrade that renames or moves one would leave them
silently off (or break every connection); this fails first, naming what moved.
"""

from __future__ import annotations

import inspect

import gunicorn
import pytest
from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi

from lifeline.server import Worker, _Protocol

GUNICORN = f"gunicorn {gunicorn.__version__}"

# ASGIProtocol's methods _Protocol overrides or calls, with the parameters it expects them to take.
PROTOCOL_METHODS = {
    "_send_error_response": ("status", "message", "extra_headers"),  # overridden: the JSON error shape
    "_safe_write": ("data",),
    "_close_transport": (),
    "_on_headers_complete": (),  # overridden: the request head is whole
    "_arm_keepalive_timer": (),  # overridden: a kept-alive connection waits for its next request
    "connection_made": ("transport",),
    "data_received": ("data",),
    "connection_lost": ("exc",),
}


@pytest.mark.parametrize("name", sorted(PROTOCOL_METHODS))
def test_gunicorn_protocol_still_has_each_method_lifeline_overrides_or_calls(name: str) -> None:
    method = getattr(ASGIProtocol, name, None)
    assert callable(method), (f"{GUNICORN} no longer has ASGIProtocol.{name}; lifeline/server.py "
                              "(_Protocol) overrides or calls it")
    parameters = tuple(inspect.signature(method).parameters)[1:]
    assert parameters == PROTOCOL_METHODS[name], (
        f"{GUNICORN} changed ASGIProtocol.{name}{parameters}; lifeline/server.py (_Protocol) overrides or "
        f"calls it as {name}{PROTOCOL_METHODS[name]}")


def test_gunicorn_worker_still_builds_each_connection_from_the_protocol_name_lifeline_replaces() -> None:
    assert getattr(gasgi, "ASGIProtocol", None) is not None, (
        f"{GUNICORN} no longer has gunicorn.workers.gasgi.ASGIProtocol; lifeline/server.py replaces it "
        "with _Protocol")
    assert "ASGIProtocol(self)" in inspect.getsource(gasgi.ASGIWorker._serve), (
        f"{GUNICORN} no longer builds connections as ASGIProtocol(self) in ASGIWorker._serve; "
        "lifeline/server.py replaces that module name with _Protocol")


_HEAD_AWAITED = "reads _request_ready to tell whether a request head is awaited"


@pytest.mark.parametrize(("owner", "member", "needle", "why"), [
    (ASGIProtocol, "_start_http1", "self._request_ready = asyncio.Event()", _HEAD_AWAITED),
    (ASGIProtocol, "_on_headers_complete", "self._request_ready.set()", _HEAD_AWAITED),
    (ASGIProtocol, "_handle_connection", "self._request_ready.clear()", _HEAD_AWAITED),
    (ASGIProtocol, "_setup_callback_parser", "self._on_headers_complete",
     "overrides _on_headers_complete to stop the header deadline"),
    (ASGIProtocol, "_handle_connection", "self._arm_keepalive_timer()",
     "overrides _arm_keepalive_timer to count an idle kept-alive connection as awaiting a request"),
    (ASGIProtocol, "_close_transport", "self._closed = True", "reads _closed"),
    (ASGIProtocol, "connection_made", "self.worker.nr_conns += 1", "reads nr_conns for the connection cap"),
    (ASGIProtocol, "connection_lost", "self.worker.nr_conns -= 1", "reads nr_conns for the connection cap"),
    (gasgi.ASGIWorker, "init_signals", "self.handle_exit_signal", "overrides handle_exit_signal"),
])
def test_gunicorn_still_sets_and_calls_what_lifeline_reads_and_overrides(
        owner: type, member: str, needle: str, why: str) -> None:
    where = f"{owner.__name__}.{member}"
    code = getattr(owner, member, None)
    assert code is not None, f"{GUNICORN} no longer has {where}; lifeline/server.py {why}"
    assert needle in inspect.getsource(code), (
        f"{GUNICORN} no longer has `{needle}` in {where}; lifeline/server.py {why}")


@pytest.mark.parametrize("name", ["init_process", "load_wsgi", "run", "handle_exit_signal", "check_config"])
def test_gunicorn_worker_still_has_each_method_lifeline_overrides(name: str) -> None:
    assert callable(getattr(gasgi.ASGIWorker, name, None)), (
        f"{GUNICORN} no longer has ASGIWorker.{name}; lifeline/server.py (Worker) overrides it")


def test_lifeline_overrides_only_what_gunicorn_has_or_what_it_names_its_own() -> None:
    # A method _Protocol or Worker adds with gunicorn's private prefix must be Lifeline's own
    # (listed here) or one gunicorn has: a typo, or a gunicorn name gone, would never be called.
    own = {"_awaiting_head", "_await_head", "_arm_head_deadline", "_end_head_wait", "_head_overdue",
           "_loop_exception", "_stop_once_successors_serve"}
    for ours, theirs in ((_Protocol, ASGIProtocol), (Worker, gasgi.ASGIWorker)):
        for name, value in vars(ours).items():
            if callable(value) and name.startswith("_") and not name.startswith("__") and name not in own:
                assert hasattr(theirs, name), (f"{GUNICORN} no longer has {theirs.__name__}.{name}; "
                                               f"lifeline/server.py ({ours.__name__}) overrides it")
