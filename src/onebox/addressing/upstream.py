"""The DNS upstream setting: '' for the host's resolvers, 'none' for no forwarding, or
IP[:PORT]. Checked by `onebox up` before a gateway is made, read again by the gateway."""

from __future__ import annotations

import ipaddress

from onebox.errors import InvalidInput

# Inside the gateway, Docker's embedded resolver forwards to the host's resolvers.
DOCKER_RESOLVER = ("127.0.0.11", 53)


def parse_upstream(text: str) -> tuple[str, int] | None:
    if not text:
        return DOCKER_RESOLVER
    if text == "none":
        return None
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = text, "53"
    try:
        ipaddress.IPv4Address(host)
        port = int(port_text)
    except ValueError as exc:
        raise InvalidInput(
            f"DNS upstream '{text}' is not IP[:PORT]",
            "give an IPv4 address like 192.0.2.53 or 192.0.2.53:5353, or " "`none`",
        ) from exc
    if not 1 <= port <= 65535:
        raise InvalidInput(f"DNS upstream port {port} is not a port", "use 1 to 65535")
    return host, port
