"""HAProxy in front of several app instances, for `flask bench --instances N`.

HAProxy is a Debian package (`make haproxy`, or `apt-get install haproxy`), not a Python one:
the bench looks for the `haproxy` program and says how to install it when it is missing. The
configuration is the scale-out example in docs/deploying.md: HTTP mode, health checks on /healthz, and
WebSocket upgrades (media streams) and long responses (the live feed) kept open by `timeout
tunnel`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .health import wait_healthy

INSTALL_HINT = ("HAProxy is not installed: run `make haproxy` (Debian/Ubuntu: apt-get install haproxy; "
                "macOS: brew install haproxy)")


class HAProxyMissing(RuntimeError):
    """The `haproxy` program is not on PATH; the message says how to install it."""


def haproxy_path() -> str:
    """Where the haproxy program is; raises HAProxyMissing with the install command if it is not."""
    found = shutil.which("haproxy")
    if found is None:
        raise HAProxyMissing(INSTALL_HINT)
    return found


def config_text(port: int, backends: Sequence[int]) -> str:
    """An HAProxy configuration that spreads requests on 127.0.0.1:port over the instances."""
    servers = "\n".join(f"    server app{i} 127.0.0.1:{p} check inter 2s fall 3 rise 1"
                        for i, p in enumerate(backends, start=1))
    return f"""global
    maxconn 4096
    log stdout format raw local0

defaults
    mode http
    log global
    option httplog
    option forwardfor
    timeout connect 2s
    timeout check 5s
    # A webhook's request must arrive whole within 10 s (slow clients get a 408).
    timeout http-request 10s
    timeout client 60s
    timeout server 60s
    # Upgraded connections (media WebSockets) and the live feed stay open this long when idle.
    timeout tunnel 1h
    retries 2
    option redispatch

frontend lifeline
    bind 127.0.0.1:{port}
    default_backend instances

backend instances
    balance leastconn
    option httpchk GET /healthz
    http-check expect status 200
{servers}
"""


class HAProxy:
    """One haproxy process in the foreground, stopped by `stop`."""

    def __init__(self, port: int, backends: Sequence[int], workdir: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._config = workdir / "haproxy.cfg"
        self._config.write_text(config_text(port, backends))
        self._log = workdir / "haproxy.log"
        self._backends = len(backends)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20.0) -> HAProxy:
        """Check the configuration, start haproxy, and wait until it routes to a healthy instance."""
        program = haproxy_path()
        check = subprocess.run([program, "-c", "-q", "-f", str(self._config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy refused its configuration {self._config}:\n{check.stderr}")
        with self._log.open("ab") as log:
            self._process = subprocess.Popen([program, "-db", "-f", str(self._config)],
                                             stdout=log, stderr=log)
        if wait_healthy(self._process, self.url, self._log, "haproxy", timeout_s):
            return self
        self.stop()
        raise RuntimeError(f"haproxy did not route to a healthy instance within {timeout_s:.0f} s")

    def requests_per_instance(self) -> list[int]:
        """How many requests HAProxy passed to each instance, from its request log."""
        text = self._log.read_text(errors="replace") if self._log.exists() else ""
        return [len(re.findall(rf" instances/app{i} ", text)) for i in range(1, self._backends + 1)]

    def stop(self) -> None:
        """Stop haproxy (SIGTERM, then SIGKILL) and reap it."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
