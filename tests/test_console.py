"""The API token travels only in the Authorization header or as a signed session, never in a URL."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from lifeline import create_app

TOKEN = "s3cret-token-value"


@pytest.fixture
def console_app(app_config: dict[str, object]) -> Iterator[Flask]:
    application = create_app({**app_config, "LIFELINE_API_TOKEN": TOKEN}, migrate=True)
    yield application
    application.extensions["lifeline"].close()


def session_cookie(client: FlaskClient) -> str | None:
    cookie = client.get_cookie("session")
    return cookie.value if cookie else None


@pytest.mark.parametrize("path", ["/api/calls", "/api/calls?active=1", "/api/calls/v3:x"])
def test_a_token_in_the_url_is_refused_even_when_it_is_right(console_app: Flask, path: str) -> None:
    joiner = "&" if "?" in path else "?"
    response = console_app.test_client().get(f"{path}{joiner}token={TOKEN}")
    assert response.status_code == 400
    assert "Authorization: Bearer" in response.get_json()["error"]["message"]


def test_a_token_in_the_dashboard_url_does_not_open_the_dashboard(console_app: Flask) -> None:
    client = console_app.test_client()
    page = client.get(f"/dashboard?token={TOKEN}")
    assert b"Live calls" not in page.data and b'name="token"' in page.data
    assert client.get("/api/calls").status_code == 403


def test_the_bearer_header_still_opens_the_api(console_app: Flask) -> None:
    client = console_app.test_client()
    assert client.get("/api/calls", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/api/calls", headers={"Authorization": "Bearer nope"}).status_code == 403


def test_signing_in_sets_a_strict_httponly_cookie_that_holds_no_token(console_app: Flask) -> None:
    client = console_app.test_client()
    response = client.post("/dashboard/signin", data={"token": TOKEN})
    assert response.status_code == 303 and response.headers["Location"].endswith("/dashboard")
    set_cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    assert TOKEN not in set_cookie and TOKEN not in response.headers["Location"]
    page = client.get("/dashboard")
    assert page.status_code == 200 and b"Live calls" in page.data and TOKEN.encode() not in page.data
    assert client.get("/api/calls?active=1").status_code == 200


def test_a_wrong_token_opens_no_session(console_app: Flask) -> None:
    client = console_app.test_client()
    response = client.post("/dashboard/signin", data={"token": "guess"})
    assert response.status_code == 403 and b"Wrong token" in response.data
    assert session_cookie(client) is None
    assert client.get("/api/calls").status_code == 403


def csrf_of(client: FlaskClient) -> str:
    """The CSRF token the console's pages put in their forms."""
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/dashboard").get_data(as_text=True))
    assert found, "no CSRF field on the live page"
    return found.group(1)


def test_signing_out_needs_the_pages_csrf_token_and_closes_the_session(console_app: Flask) -> None:
    client = console_app.test_client()
    client.post("/dashboard/signin", data={"token": TOKEN})
    assert client.post("/dashboard/signout").status_code == 403  # a forged form from elsewhere
    assert client.get("/api/calls").status_code == 200
    assert client.post("/dashboard/signout", data={"csrf": csrf_of(client)}).status_code == 303
    assert client.get("/api/calls").status_code == 403


def test_changing_the_token_signs_everyone_out(app_config: dict[str, object]) -> None:
    first = create_app({**app_config, "LIFELINE_API_TOKEN": TOKEN, "LIFELINE_SECRET_KEY": "k" * 32}, migrate=True)
    client = first.test_client()
    client.post("/dashboard/signin", data={"token": TOKEN})
    cookie = session_cookie(client)
    first.extensions["lifeline"].close()
    rotated = create_app({**app_config, "LIFELINE_API_TOKEN": "new-token", "LIFELINE_SECRET_KEY": "k" * 32}, migrate=True)
    other = rotated.test_client()
    assert cookie is not None
    other.set_cookie("session", cookie)
    assert other.get("/api/calls").status_code == 403
    rotated.extensions["lifeline"].close()


def test_the_dashboard_is_off_without_a_configured_token(app: Flask) -> None:
    assert app.test_client().get("/dashboard").status_code == 403
    assert app.test_client().post("/dashboard/signin", data={"token": ""}).status_code == 403
