"""Waiting for a process we started (gunicorn, HAProxy) to answer its health check."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx


def wait_healthy(process: subprocess.Popen[bytes], url: str, log_path: Path, name: str,
                 timeout_s: float) -> bool:
    """True once GET <url>/healthz answers 200; False after timeout_s; RuntimeError (with the
    tail of its log) as soon as the process exits, so a bad start is reported, not waited out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see its log:\n"
                               f"{log_path.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False
