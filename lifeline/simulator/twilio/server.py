"""The Twilio emulator's HTTP face: the 2010-04-01 Calls API the SDK speaks, on a loopback port."""

from __future__ import annotations

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from .emulator import TwilioEmulator, twilio_error

_CALL = "/2010-04-01/Accounts/<account>/Calls/<sid>"


def twilio_emulator_app(emulator: TwilioEmulator) -> Flask:
    """A WSGI app serving the emulator's REST API (HTTP basic auth: Account SID, Auth Token)."""
    app = Flask("twilio-emulator")

    def answer(name: str, account: str, sid: str, target: str | None = None) -> ResponseReturnValue:
        auth = request.authorization
        if auth is None or account != emulator.account_sid or \
                not emulator.authorized(auth.username, auth.password):
            status, body = twilio_error(401, 20003, "Authenticate")
        else:
            status, body = emulator.rest(name, sid, request.form.to_dict(), target)
        return jsonify(body), status

    @app.get(f"{_CALL}.json")
    def fetch(account: str, sid: str) -> ResponseReturnValue:
        return answer("fetch", account, sid)

    @app.post(f"{_CALL}.json")
    def update(account: str, sid: str) -> ResponseReturnValue:
        return answer("update", account, sid)

    @app.post(f"{_CALL}/Streams.json")
    def streams(account: str, sid: str) -> ResponseReturnValue:
        return answer("streams", account, sid)

    @app.post(f"{_CALL}/Transcriptions.json")
    def transcriptions(account: str, sid: str) -> ResponseReturnValue:
        return answer("transcriptions", account, sid)

    @app.get("/2010-04-01/Accounts/<account>/Recordings/<sid>")
    def recording(account: str, sid: str) -> ResponseReturnValue:
        auth = request.authorization
        if auth is None or account != emulator.account_sid or \
                not emulator.authorized(auth.username, auth.password):
            status, body = twilio_error(401, 20003, "Authenticate")
            return jsonify(body), status
        audio = emulator.recordings.get(sid.split(".", 1)[0])  # RE….mp3 or RE….wav: WAV either way
        if audio is None:
            status, body = twilio_error(404, 20404, "The requested resource was not found")
            return jsonify(body), status
        return audio, 200, {"Content-Type": "audio/x-wav"}

    # One stream or transcription, by its SID or the name it was started with (Status=stopped).
    @app.post(f"{_CALL}/Streams/<target>.json")
    def stream(account: str, sid: str, target: str) -> ResponseReturnValue:
        return answer("stream_update", account, sid, target)

    @app.post(f"{_CALL}/Transcriptions/<target>.json")
    def transcription(account: str, sid: str, target: str) -> ResponseReturnValue:
        return answer("transcription_update", account, sid, target)

    return app
