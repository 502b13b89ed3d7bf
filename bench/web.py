"""Tiny HTTP client for readiness checks: one GET with a Host header, no proxies, no
name lookups (the caller gives an address)."""

from __future__ import annotations

import http.client
import time


def get(
    address: str,
    port: int,
    path: str,
    host: str = "",
    timeout: float = 2.0,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes] | None:
    """(status, body), or None when nothing answers."""
    connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": host or address, **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def wait_for_body(
    address: str, port: int, path: str, host: str, expected: str, seconds: float
) -> float | None:
    """Polls until the page's body starts with `expected`; the monotonic time it first
    did, or None when the time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = get(address, port, path, host, timeout=1.0)
        if answer and answer[0] == 200 and answer[1].decode(errors="replace").startswith(expected):
            return time.monotonic()
        time.sleep(0.01)
    return None
