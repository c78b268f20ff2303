"""The emulator's HTTP face: Telnyx's `/v2/calls/{id}/actions/{name}` on a loopback port."""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.serving import BaseWSGIServer, make_server

from .emulator import Emulator
from .replies import error, unauthorized


def emulator_app(emulator: Emulator) -> Flask:
    """A WSGI app serving the emulator's REST API."""
    app = Flask("telnyx-emulator")

    @app.before_request
    def require_key() -> ResponseReturnValue | None:
        """Every route needs the API key, as at Telnyx."""
        if emulator.authorized(request.headers.get("Authorization")):
            return None
        if request.path.startswith("/recordings/"):
            return None  # recording URLs are presigned links, fetched without the API key
        status, reply = unauthorized()
        return jsonify(reply), status

    @app.post("/v2/calls/<path:call_control_id>/actions/<name>")
    def action(call_control_id: str, name: str) -> ResponseReturnValue:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            status, reply = error(400, "10015", "Bad Request", "the body is not a JSON object")
        else:
            status, reply = emulator.handle_command(call_control_id, name, body)
        return jsonify(reply), status

    @app.post("/v2/calls")
    def dial() -> ResponseReturnValue:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            status, reply = error(400, "10015", "Bad Request", "the body is not a JSON object")
        else:
            status, reply = emulator.dial(body)
        return jsonify(reply), status

    @app.get("/recordings/<name>")
    def recording(name: str) -> ResponseReturnValue:
        audio = emulator.recordings.get(name)
        if audio is None:
            return jsonify({"errors": [{"code": "10005", "title": "Resource not found"}]}), 404
        return audio, 200, {"Content-Type": "audio/wav"}

    @app.get("/v2/calls/<path:call_control_id>")
    def status(call_control_id: str) -> ResponseReturnValue:
        status, reply = emulator.call_status(call_control_id)
        return jsonify(reply), status

    return app


class ServerThread:
    """Serves a WSGI app on 127.0.0.1 in a background thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="wsgi-server", daemon=True)

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321."""
        return f"http://{self._server.host}:{self._server.server_port}"

    def start(self) -> ServerThread:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (a server never started only closes its socket: shutdown() would wait for
        a serve_forever that never ran)."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
