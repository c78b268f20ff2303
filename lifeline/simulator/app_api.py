"""The app's public HTTP API as a scripted supervisor uses it: real HTTP with the bearer token."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

TIMEOUT_S = 10.0


class AppApi:
    """Calls the app under simulation through its API, as a supervisor's script or the console would."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self._headers = {"Authorization": f"Bearer {token}"}

    def call_detail(self, call_control_id: str) -> dict[str, Any] | None:
        """GET /api/calls/<id>: the app's record of one call, or None when it cannot be read."""
        url = f"{self.base_url}/api/calls/{quote(call_control_id, safe=':')}"
        try:
            response = httpx.get(url, headers=self._headers, timeout=TIMEOUT_S)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        detail = response.json()
        return detail if isinstance(detail, dict) else None

    def set_listening(self, call_control_id: str, paused: bool) -> tuple[int, str]:
        """POST /api/calls/<id>/listening; the HTTP status and, unless it is 200, the app's error."""
        url = f"{self.base_url}/api/calls/{quote(call_control_id, safe=':')}/listening"
        try:
            response = httpx.post(url, json={"paused": paused}, headers=self._headers, timeout=TIMEOUT_S)
        except httpx.HTTPError as exc:
            return 0, f"the request failed: {exc}"
        if response.status_code == 200:
            return 200, ""
        try:
            detail = str(response.json()["error"]["message"])
        except (ValueError, KeyError, TypeError):  # not Lifeline's error shape: a proxy's page, say
            detail = response.text
        return response.status_code, detail[:200]
