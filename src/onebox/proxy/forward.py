"""The HTTP forward proxy for LAN users, port 3128 in the gateway: absolute-form requests
with keep-alive, CONNECT tunnels, and the PAC file at /proxy.pac. Every destination goes
through the policy before a socket is opened; refusals are a 403 naming the reason. It
handles one request at a time per client connection and reuses the upstream connection
while the client keeps asking the same machine."""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
from collections.abc import Mapping

from onebox.gateway.settings import Settings
from onebox.proxy import pac
from onebox.proxy import policy as policies
from onebox.proxy.relay import ConnectFailed, ProxyPlane, ProxyServer, Side, Upstream, pause

log = logging.getLogger(__name__)

PORT = 3128
MAX_HEAD = 64 * 1024
HOP_BY_HOP = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"te",
        b"trailer",
        b"upgrade",
        b"host",
    )
)
PHRASES = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}
CONNECT_FAILURES = {"timeout": 504, "refused": 502, "unreachable": 502}


class HttpError(Exception):
    """A request the proxy answers itself, with this status and reason, then closes."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class State(enum.Enum):
    """Where a client connection is in its current request (a tunnel leaves requests)."""

    HEAD = 1  # waiting for a request head
    BODY = 2  # passing a request body on
    WAIT = 3  # request sent; waiting for the end of the response


class Body(enum.Enum):
    NONE = 0
    LENGTH = 1
    CHUNKED = 2
    UNTIL_CLOSE = 3


class ChunkedEnd:
    """Finds where a chunked body ends as its bytes pass by, without keeping them."""

    __slots__ = ("left", "line", "step")

    def __init__(self) -> None:
        self.left = 0
        self.line = b""
        self.step = 0  # 0 size line, 1 data, 2 CRLF after data, 3 trailer lines

    def feed(self, data: bytes, start: int = 0) -> int:
        """How many bytes of data[start:] end the body, or -1 when all of it belongs."""
        pos, size = start, len(data)
        while pos < size:
            if self.step == 1:
                take = min(self.left, size - pos)
                pos += take
                self.left -= take
                if self.left == 0:
                    self.step = 2
                continue
            end = data.find(b"\n", pos)
            if end < 0:
                self.line += data[pos:]
                if len(self.line) > 8192:
                    raise HttpError(400, "chunk size line too long")
                return -1
            line, self.line, pos = self.line + data[pos:end], b"", end + 1
            if self.step == 0:
                self._size(line)
            elif self.step == 2:
                self.step = 0
            elif line in (b"", b"\r"):
                return pos - start
        return -1

    def _size(self, line: bytes) -> None:
        try:
            self.left = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise HttpError(400, "bad chunk size in a chunked body") from exc
        self.step = 1 if self.left else 3


def _header(lower_head: bytes, name: bytes) -> bytes | None:
    """The value of the first header `name` (lower-case) in a lower-cased head."""
    start = lower_head.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    end = lower_head.find(b"\r\n", start)
    return lower_head[start : end if end >= 0 else len(lower_head)].strip()


def _tokens(value: bytes | None) -> set[bytes]:
    return {t.strip() for t in value.split(b",")} if value else set()


def split_authority(authority: str, default_port: int | None) -> tuple[str, int]:
    """host:port or [v6]:port, userinfo refused; the port is required without a default."""
    if "@" in authority:
        raise HttpError(400, "user names in proxy URLs are not supported")
    host, port_text = authority, ""
    if authority.startswith("["):
        close = authority.find("]")
        host, port_text = authority[1:close], authority[close + 1 :].removeprefix(":")
    elif ":" in authority:
        host, _, port_text = authority.rpartition(":")
    if not port_text:
        if default_port is None:
            raise HttpError(400, f"CONNECT target {authority!r} needs a port")
        return host, default_port
    if not port_text.isdigit():
        raise HttpError(400, f"bad port in {authority!r}")
    return host, int(port_text)


class Request:
    """One client request head, parsed just enough to forward it."""

    __slots__ = ("method", "target", "version", "lines", "lower")

    def __init__(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            raise HttpError(400, "malformed request line")
        self.method, self.target, self.version = parts
        self.lines = lines[1:]
        self.lower = head.lower()

    def keep_alive(self) -> bool:
        tokens = _tokens(_header(self.lower, b"connection")) | _tokens(
            _header(self.lower, b"proxy-connection")
        )
        if self.version == b"HTTP/1.0":
            return b"keep-alive" in tokens
        return b"close" not in tokens

    def body(self) -> tuple[Body, int]:
        encoding = _header(self.lower, b"transfer-encoding")
        if encoding is not None:
            if not encoding.endswith(b"chunked"):
                raise HttpError(501, "only chunked transfer-encoding is supported")
            return Body.CHUNKED, 0
        length = _header(self.lower, b"content-length")
        if length is None:
            return Body.NONE, 0
        if not length.isdigit():
            raise HttpError(400, "bad Content-Length")
        return (Body.LENGTH, int(length)) if int(length) else (Body.NONE, 0)

    def upstream_head(self, path: bytes, authority: bytes, keep: bool, upgrade: bool) -> bytes:
        out = [b" ".join((self.method, path, self.version)), b"Host: " + authority]
        for line in self.lines:
            colon = line.find(b":")
            if colon <= 0:
                raise HttpError(400, "malformed header line")
            name = line[:colon].strip().lower()
            if name not in HOP_BY_HOP or (upgrade and name == b"upgrade"):
                out.append(line)
        if upgrade:
            out.append(b"Connection: Upgrade")
        elif not keep:
            out.append(b"Connection: close")
        out.append(b"\r\n")
        return b"\r\n".join(out)


def error_response(status: int, reason: str) -> bytes:
    body = f"onebox proxy: {reason}\n".encode()
    return (
        f"HTTP/1.1 {status} {PHRASES.get(status, 'Error')}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


class ForwardProxy(ProxyServer):
    """The HTTP proxy's listener; it also serves the PAC file."""

    kind = "HTTP forward proxy"

    def __init__(
        self, policy: policies.Policy, *, max_per_client: int, pac_fallback: str = ""
    ) -> None:
        super().__init__(policy, max_per_client=max_per_client)
        self.pac_fallback = pac_fallback
        self.requests = 0

    def make_client(self) -> Side:
        return Client(self)

    def pac(self, host_header: str) -> bytes:
        proxy = host_header if pac.valid_proxy_address(host_header) else self.pac_fallback
        p = self.policy
        return pac.render(p.domain, p.subnet, proxy).encode()


class Client(Side):
    """One client connection: requests in, responses out, or a tunnel after CONNECT."""

    def __init__(self, proxy: ForwardProxy) -> None:
        super().__init__(proxy.limits, proxy.clients)
        self.proxy = proxy
        self.state = State.HEAD
        self.buffer = b""
        # The request being sent.
        self.body = Body.NONE
        self.body_left = 0
        self.body_chunks: ChunkedEnd | None = None
        self.keep = True
        self.head_request = False
        self.upgrade = False
        self.upstream_key: tuple[ipaddress.IPv4Address, int] | None = None
        self.replay: bytes | None = None
        # The response coming back.
        self.response = Body.NONE
        self.response_head = b""
        self.response_left = 0
        self.response_chunks: ChunkedEnd | None = None
        self.upstream_keep = False

    # -- client side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        decision = self.proxy.policy.client(self.host)
        if not decision.allowed:
            self.fail(HttpError(403, decision.reason))
        elif not self.admit():
            limit = self.limits.maximum
            self.fail(HttpError(429, f"client {self.host} has {limit} connections open"))

    def data_received(self, data: bytes) -> None:
        if self.tunneling:
            self.to_upstream(data)
            return
        self.touched = True
        try:
            if self.state is State.BODY:
                self._send_body(data)
                return
            self.buffer = self.buffer + data if self.buffer else data
            if self.state is State.HEAD:
                self._next_request()
            elif len(self.buffer) > MAX_HEAD:
                pause(self.transport, True)
        except HttpError as error:
            self.fail(error)

    def idle(self) -> bool:
        return self.state is State.HEAD and not self.tunneling

    def eof_received(self) -> bool:
        if self.tunneling:
            return super().eof_received()
        self.client_eof = True
        # A client may half-close after its request; the answer still goes.
        return self.state is State.WAIT

    # -- requests

    def _next_request(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                raise HttpError(431, f"request head larger than {MAX_HEAD} bytes")
            return
        head, rest = self.buffer[:end], self.buffer[end + 4 :]
        self.buffer = b""
        request = Request(head)
        self.proxy.requests += 1
        if request.method == b"CONNECT":
            self._tunnel(request, rest)
        elif request.target.startswith(b"/"):
            self._local(request)
        elif request.target[:7].lower() == b"http://":
            self._forward(request, rest)
        else:
            raise HttpError(400, "send absolute-form http:// URLs, or CONNECT for https")

    def _local(self, request: Request) -> None:
        """The proxy's own pages: only the PAC file."""
        path = request.target.split(b"?", 1)[0]
        if path != pac.PATH.encode():
            raise HttpError(404, f"this is a proxy; the only page here is {pac.PATH}")
        if request.method not in (b"GET", b"HEAD"):
            raise HttpError(405, f"{pac.PATH} answers GET only")
        host = (_header(request.lower, b"host") or b"").decode("ascii", "replace")
        body = self.proxy.pac(host)
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: {pac.CONTENT_TYPE}\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-cache\r\n\r\n"
        ).encode()
        self.write(head + (b"" if request.method == b"HEAD" else body))
        if not request.keep_alive():
            self.close()

    def _forward(self, request: Request, rest: bytes) -> None:
        authority, slash, path = request.target[7:].partition(b"/")
        host, port = split_authority(authority.decode("ascii", "replace"), 80)
        address = self._decide(host, port)
        self.keep = request.keep_alive()
        self.head_request = request.method == b"HEAD"
        self.upgrade = b"upgrade" in _tokens(_header(request.lower, b"connection"))
        self.body, self.body_left = request.body()
        self.body_chunks = ChunkedEnd() if self.body is Body.CHUNKED else None
        self.response, self.response_head = Body.NONE, b""
        reused = self._ensure_upstream(address, port)
        head = request.upstream_head(slash + path, authority, self.keep, self.upgrade)
        # A kept connection the machine closes just as this request leaves is no answer;
        # a request that changes nothing is sent again once on a new connection.
        safe = request.method in (b"GET", b"HEAD", b"OPTIONS") and self.body is Body.NONE
        self.replay = head if reused and safe else None
        self.to_upstream(head)
        self.state = State.BODY if self.body is not Body.NONE else State.WAIT
        if rest:
            self._send_body(rest) if self.state is State.BODY else self._keep(rest)

    def _tunnel(self, request: Request, rest: bytes) -> None:
        host, port = split_authority(request.target.decode("ascii", "replace"), None)
        address = self._decide(host, port)
        self.open_upstream(address, port)
        self.upstream_key = None  # a tunnel never goes back to requests
        self.tunneling = True
        if rest:
            self.to_upstream(rest)

    def _decide(self, host: str, port: int) -> ipaddress.IPv4Address:
        decision = self.proxy.policy.destination(host, port)
        if decision.address is None:
            self.proxy.refusals += 1
            status = 403 if decision.verdict is policies.Verdict.REFUSE else 502
            raise HttpError(status, decision.reason)
        return decision.address

    def _send_body(self, data: bytes) -> None:
        if self.body is Body.LENGTH:
            if len(data) < self.body_left:
                self.body_left -= len(data)
                self.to_upstream(data)
                return
            cut = self.body_left
        else:
            assert self.body_chunks is not None
            cut = self.body_chunks.feed(data)
            if cut < 0:
                self.to_upstream(data)
                return
        self.to_upstream(data[:cut])
        self.state = State.WAIT
        if cut < len(data):
            self._keep(data[cut:])

    def _keep(self, data: bytes) -> None:
        """Bytes after a full request: the next (pipelined) request, parsed later."""
        self.buffer += data
        if len(self.buffer) > MAX_HEAD:
            pause(self.transport, True)

    # -- the upstream connection

    def _ensure_upstream(self, address: ipaddress.IPv4Address, port: int) -> bool:
        """Opens a connection unless the one open goes there already (then True)."""
        key = (address, port)
        if self.upstream is not None and self.upstream_key == key:
            return True
        self.open_upstream(address, port)
        self.upstream_key = key
        return False

    def connected(self, upstream: Upstream) -> None:
        if self.tunneling:
            self.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

    def connect_failed(self, failure: ConnectFailed) -> None:
        self.fail(HttpError(CONNECT_FAILURES[failure.kind], failure.reason))

    def drop_upstream(self) -> None:
        super().drop_upstream()
        self.upstream_key = None

    # -- what the upstream sends back

    def upstream_data(self, data: bytes) -> None:
        if self.tunneling:
            self.write(data)
            return
        try:
            self._response(data)
        except HttpError as error:
            log.debug("Bad response from %s: %s", self.upstream_key, error.reason)
            self.drop_upstream()
            self.close()

    def upstream_lost(self) -> None:
        key, replay = self.upstream_key, self.replay
        self.upstream = self.up_transport = None
        self.upstream_key = self.replay = None
        if self.closed or (self.state is State.HEAD and not self.tunneling):
            return  # an idle kept connection ended
        if self.response is Body.UNTIL_CLOSE or self.tunneling:
            self.close()
            return
        if self.response is Body.NONE and not self.response_head:
            if replay is not None and key is not None:
                self._ensure_upstream(*key)
                self.to_upstream(replay)
                return
            target = f"{key[0]}:{key[1]}" if key else "the machine"
            self.fail(HttpError(502, f"{target} closed the connection without answering"))
            return
        self.close()  # cut off in the middle of a response: the client sees it end early

    def _response(self, data: bytes) -> None:
        pieces: list[bytes] = []
        pos = 0
        while pos < len(data) and not self.tunneling:
            if self.response is Body.NONE:
                pos = self._response_head(data, pos, pieces)
            elif self.response is Body.LENGTH:
                take = min(self.response_left, len(data) - pos)
                pieces.append(data[pos : pos + take] if pos or take < len(data) else data)
                pos += take
                self.response_left -= take
                if not self.response_left:
                    self._response_done(pieces)
            elif self.response is Body.CHUNKED:
                assert self.response_chunks is not None
                cut = self.response_chunks.feed(data, pos)
                end = len(data) if cut < 0 else pos + cut
                pieces.append(data[pos:end] if pos or end < len(data) else data)
                pos = end
                if cut >= 0:
                    self._response_done(pieces)
            else:
                pieces.append(data[pos:] if pos else data)
                pos = len(data)
        if pos < len(data) and self.tunneling:
            pieces.append(data[pos:])
        if pieces:
            self.write(pieces[0] if len(pieces) == 1 else b"".join(pieces))

    def _response_head(self, data: bytes, pos: int, pieces: list[bytes]) -> int:
        """Reads a response head from data[pos:]; returns where its body starts."""
        buffered = self.response_head + data[pos:] if pos or self.response_head else data
        end = buffered.find(b"\r\n\r\n")
        if end < 0:
            if len(buffered) > MAX_HEAD:
                raise HttpError(502, "response head too large")
            self.response_head = buffered
            return len(data)
        consumed = end + 4 - len(self.response_head)
        head, self.response_head = buffered[: end + 4], b""
        if self.state is State.HEAD:
            raise HttpError(502, "response with no request")
        head, complete = self._frame(head)
        pieces.append(head)
        if complete:
            self._response_done(pieces)
        return pos + consumed

    def _frame(self, head: bytes) -> tuple[bytes, bool]:
        """Sets how the response body ends; returns the head to send on, and whether
        the response is complete with it."""
        lower = head.lower()
        first = head[: head.find(b"\r\n")].split(b" ", 2)
        if len(first) < 2 or not first[1].isdigit() or not first[0].startswith(b"HTTP/1."):
            raise HttpError(502, "malformed status line")
        status = int(first[1])
        self.replay = None
        tokens = _tokens(_header(lower, b"connection"))
        if first[0] == b"HTTP/1.1":
            self.upstream_keep = b"close" not in tokens
        else:
            self.upstream_keep = b"keep-alive" in tokens
        if status == 101 and self.upgrade:
            self.tunneling = True
            self.response = Body.UNTIL_CLOSE
            return head, False
        if 100 <= status < 200:
            return head, False  # interim: the real response follows
        if self.head_request or status in (204, 304):
            self.response = Body.NONE
        elif b"chunked" in (_header(lower, b"transfer-encoding") or b""):
            self.response, self.response_chunks = Body.CHUNKED, ChunkedEnd()
        else:
            length = _header(lower, b"content-length")
            if length is None:
                self.response = Body.UNTIL_CLOSE
                self.keep = self.upstream_keep = False
                return head, False
            if not length.isdigit():
                raise HttpError(502, "bad Content-Length in the response")
            self.response_left = int(length)
            self.response = Body.LENGTH if self.response_left else Body.NONE
        complete = self.response is Body.NONE
        if self.keep and (not self.upstream_keep or first[0] != b"HTTP/1.1"):
            return _persistent(head), complete  # the upstream closes, the client stays
        return head, complete

    def _response_done(self, pieces: list[bytes]) -> None:
        self.response = Body.NONE
        if not self.upstream_keep:
            self.drop_upstream()
        if not self.keep or self.state is State.BODY or self.client_eof:
            # An answer before the whole body was sent leaves the rest unread: close too.
            self._write_and_close(pieces)
            return
        self.state = State.HEAD
        if self.buffer:
            # After this response is written, so that an error answer cannot overtake it.
            asyncio.get_running_loop().call_soon(self._resume_requests)

    def _write_and_close(self, pieces: list[bytes]) -> None:
        if pieces:
            self.write(b"".join(pieces))
            pieces.clear()
        self.close()
        self.closed = True

    def _resume_requests(self) -> None:
        if self.state is not State.HEAD or self.closed:
            return
        pause(self.transport, False)
        try:
            self._next_request()
        except HttpError as error:
            self.fail(error)

    def fail(self, error: HttpError) -> None:
        """Answers with the error and closes."""
        log.debug("Answered %s with %d: %s", self.host, error.status, error.reason)
        self.write(error_response(error.status, error.reason))
        self.close()
        self.closed = True


def _persistent(head: bytes) -> bytes:
    """A response head rewritten for a client that keeps its connection: HTTP/1.1, and
    no Connection or Keep-Alive headers meant for the proxy's own upstream connection."""
    lines = head[:-4].split(b"\r\n")
    status = b"HTTP/1.1" + lines[0][8:]
    kept = [
        line
        for line in lines[1:]
        if line[: line.find(b":")].strip().lower() not in (b"connection", b"keep-alive")
    ]
    return b"\r\n".join([status, *kept]) + b"\r\n\r\n"


class ForwardPlane(ProxyPlane):
    """The HTTP forward proxy and PAC file as a gateway plane."""

    name = "forward proxy"
    port = PORT

    def __init__(self, settings: Settings, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(settings, environ)
        host = "127.0.0.1" if settings.bind == "0.0.0.0" else settings.bind
        fallback = f"{host}:{settings.ports.get('proxy', PORT)}"
        self.proxy = ForwardProxy(
            self.policy, max_per_client=self.max_per_client, pac_fallback=fallback
        )
        self.listener = self.proxy
