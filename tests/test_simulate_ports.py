"""`flask simulate --port/--emulator-port`: the ports a simulation serves on can be chosen."""

from __future__ import annotations

import socket

from flask import Flask

from .conftest import ROOT

CALL = str(ROOT / "examples" / "calls" / "02-asks-for-human.yaml")
PORT = 18641  # within the range this project's tests may use


def test_the_app_under_simulation_serves_on_the_port_given(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["simulate", "--speed", "10", "--quiet", "--port", str(PORT),
                                                "--emulator-port", str(PORT + 1), CALL])
    assert result.exit_code == 0, result.output
    assert f"Lifeline under simulation: http://127.0.0.1:{PORT}/dashboard" in result.output


def test_a_port_another_program_holds_is_refused_naming_the_option(app: Flask) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", PORT + 2))
        held.listen()
        result = app.test_cli_runner().invoke(args=["simulate", "--emulator-port", str(PORT + 2), CALL])
    assert result.exit_code == 1
    assert f"cannot serve on 127.0.0.1:{PORT + 2}" in result.output
    assert "choose another --emulator-port" in result.output


def test_port_is_refused_with_app_url_whose_app_serves_where_it_was_started(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["simulate", "--app-url", "http://127.0.0.1:1",
                                                "--port", str(PORT), CALL])
    assert result.exit_code == 2
    assert "with --app-url the app is yours" in result.output
