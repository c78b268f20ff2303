"""A raw WebSocket client for tests that need what a library client will not do: half a frame, a
silent socket."""

from __future__ import annotations

import base64
import os
import socket
import struct
import time


def handshake(port: int, path: str, timeout: float = 20.0) -> tuple[int, socket.socket]:
    """Ask to upgrade; the HTTP status (101 when accepted) and the socket, left open."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    conn.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(1)
        if not chunk:
            break
        head += chunk
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, conn


def frame_header(length: int, opcode: int = 0x1) -> bytes:
    """A client frame's header announcing `length` payload bytes, masked with a zero key."""
    if length < 126:
        size = bytes([0x80 | length])
    elif length < 65536:
        size = bytes([0x80 | 126]) + struct.pack("!H", length)
    else:
        size = bytes([0x80 | 127]) + struct.pack("!Q", length)
    return bytes([0x80 | opcode]) + size + b"\x00\x00\x00\x00"


def send_text(conn: socket.socket, text: str) -> None:
    """One whole text frame."""
    data = text.encode()
    conn.sendall(frame_header(len(data)) + data)


def close_code(conn: socket.socket, timeout: float) -> int | None:
    """Wait for the server to close: its close code, 0 for a close without a frame, None if still open."""
    conn.settimeout(0.2)
    deadline = time.monotonic() + timeout
    buffer = b""
    while time.monotonic() < deadline:
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return 0
        if not chunk:
            return 0
        buffer += chunk
        while len(buffer) >= 2:
            opcode, length = buffer[0] & 0x0F, buffer[1] & 0x7F
            offset = 2
            if length == 126:
                length, offset = struct.unpack("!H", buffer[2:4])[0], 4
            elif length == 127:
                length, offset = struct.unpack("!Q", buffer[2:10])[0], 10
            if len(buffer) < offset + length:
                break
            payload, buffer = buffer[offset:offset + length], buffer[offset + length:]
            if opcode == 0x8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 0
    return None
