"""The SOCKS5 proxy for LAN users, port 1080 in the gateway (RFC 1928): no
authentication, CONNECT only. Names are resolved from the lab's own machine list, never
by outside DNS, and every destination goes through the policy before a socket opens;
refusals carry the matching SOCKS reply code."""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
import socket
from collections.abc import Mapping

from onebox.gateway.settings import Settings
from onebox.proxy import policy as policies
from onebox.proxy.relay import ConnectFailed, ProxyPlane, ProxyServer, Side, Upstream

log = logging.getLogger(__name__)

PORT = 1080
VERSION = 5
NO_AUTH = 0x00
NO_ACCEPTABLE_METHOD = 0xFF
CMD_CONNECT = 0x01
ATYP_IPV4, ATYP_NAME, ATYP_IPV6 = 0x01, 0x03, 0x04
MAX_GREETING = 2 + 255
MAX_REQUEST = 4 + 1 + 255 + 2


class Reply(enum.IntEnum):
    SUCCEEDED = 0x00
    GENERAL_FAILURE = 0x01
    NOT_ALLOWED = 0x02
    NETWORK_UNREACHABLE = 0x03
    HOST_UNREACHABLE = 0x04
    CONNECTION_REFUSED = 0x05
    COMMAND_NOT_SUPPORTED = 0x07
    ADDRESS_TYPE_NOT_SUPPORTED = 0x08


CONNECT_FAILURES = {
    "refused": Reply.CONNECTION_REFUSED,
    "unreachable": Reply.HOST_UNREACHABLE,
    "timeout": Reply.HOST_UNREACHABLE,
}


class Refused(Exception):
    """A request answered with a failure reply, then the connection closes."""

    def __init__(self, reply: Reply, reason: str) -> None:
        super().__init__(reason)
        self.reply = reply
        self.reason = reason


def reply(code: Reply, address: str = "0.0.0.0", port: int = 0) -> bytes:
    """A reply with an IPv4 bound address, as RFC 1928 section 6 lays it out."""
    return bytes((VERSION, code, 0, ATYP_IPV4)) + socket.inet_aton(address) + port.to_bytes(2)


def parse_greeting(data: bytes) -> tuple[int, bool] | None:
    """(bytes used, whether no-auth is offered), or None until the greeting is whole."""
    if len(data) < 2:
        return None
    if data[0] != VERSION:
        raise Refused(Reply.GENERAL_FAILURE, f"SOCKS version {data[0]} is not 5")
    size = 2 + data[1]
    if len(data) < size:
        return None
    return size, NO_AUTH in data[2:size]


def parse_request(data: bytes) -> tuple[int, str, int] | None:
    """(bytes used, host, port) of a CONNECT request, or None until it is whole."""
    if len(data) < 5:
        return None
    version, command, _, kind = data[:4]
    if version != VERSION:
        raise Refused(Reply.GENERAL_FAILURE, f"SOCKS version {version} is not 5")
    if kind == ATYP_IPV4:
        end = 4 + 4
    elif kind == ATYP_NAME:
        end = 5 + data[4]
    elif kind == ATYP_IPV6:
        end = 4 + 16
    else:
        raise Refused(Reply.ADDRESS_TYPE_NOT_SUPPORTED, f"address type {kind} is unknown")
    if len(data) < end + 2:
        return None
    if command != CMD_CONNECT:
        raise Refused(Reply.COMMAND_NOT_SUPPORTED, f"command {command} is not CONNECT")
    raw = data[4:end]
    if kind == ATYP_IPV4:
        host = str(ipaddress.IPv4Address(raw))
    elif kind == ATYP_IPV6:
        host = str(ipaddress.IPv6Address(raw))
    else:
        host = raw[1:].decode("ascii", "replace")
    return end + 2, host, int.from_bytes(data[end : end + 2])


class SocksProxy(ProxyServer):
    kind = "SOCKS5 proxy"

    def make_client(self) -> Side:
        return SocksClient(self)


class SocksClient(Side):
    """One SOCKS5 client: greeting, one CONNECT request, then a tunnel."""

    def __init__(self, proxy: SocksProxy) -> None:
        super().__init__(proxy.limits, proxy.clients)
        self.proxy = proxy
        self.buffer = b""
        self.greeted = False
        self.refusal: Refused | None = None  # answered at the request, where codes exist

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        decision = self.proxy.policy.client(self.host)
        if not decision.allowed:
            self.refusal = Refused(Reply.NOT_ALLOWED, decision.reason)
        elif not self.admit():
            limit = self.limits.maximum
            reason = f"client {self.host} has {limit} connections open"
            self.refusal = Refused(Reply.GENERAL_FAILURE, reason)

    def data_received(self, data: bytes) -> None:
        if self.tunneling:
            self.to_upstream(data)
            return
        self.buffer += data
        try:
            self._negotiate()
        except Refused as refused:
            self.refuse(refused)

    def _negotiate(self) -> None:
        if not self.greeted:
            greeting = parse_greeting(self.buffer)
            if greeting is None:
                self._check_size(MAX_GREETING)
                return
            used, no_auth = greeting
            if not no_auth:
                self.write(bytes((VERSION, NO_ACCEPTABLE_METHOD)))
                self.close()
                return
            self.write(bytes((VERSION, NO_AUTH)))
            self.buffer, self.greeted = self.buffer[used:], True
        request = parse_request(self.buffer)
        if request is None:
            self._check_size(MAX_REQUEST)
            return
        used, host, port = request
        if self.refusal is not None:
            raise self.refusal
        decision = self.proxy.policy.destination(host, port)
        if decision.address is None:
            self.proxy.refusals += 1
            refused = decision.verdict is policies.Verdict.REFUSE
            raise Refused(Reply.NOT_ALLOWED if refused else Reply.HOST_UNREACHABLE, decision.reason)
        rest, self.buffer = self.buffer[used:], b""
        self.tunneling = True
        self.open_upstream(decision.address, port)
        if rest:
            self.to_upstream(rest)

    def _check_size(self, limit: int) -> None:
        if len(self.buffer) > limit:
            raise Refused(Reply.GENERAL_FAILURE, "malformed SOCKS5 message")

    def connected(self, upstream: Upstream) -> None:
        assert upstream.transport is not None
        address, port = upstream.transport.get_extra_info("sockname")[:2]
        self.write(reply(Reply.SUCCEEDED, address, port))

    def connect_failed(self, failure: ConnectFailed) -> None:
        self.refuse(Refused(CONNECT_FAILURES[failure.kind], failure.reason))

    def refuse(self, refused: Refused) -> None:
        log.debug("SOCKS refusal %d to %s: %s", refused.reply, self.host, refused.reason)
        self.write(reply(refused.reply))
        self.close()
        self.closed = True


class SocksPlane(ProxyPlane):
    """The SOCKS5 proxy as a gateway plane."""

    name = "socks proxy"
    port = PORT

    def __init__(self, settings: Settings, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(settings, environ)
        self.proxy = SocksProxy(self.policy, max_per_client=self.max_per_client)
        self.listener = self.proxy
