"""The lab's DNS server on UDP and TCP: the zone answers what it owns, a cache of ready
reply bytes repeats those answers without parsing, and the rest goes upstream. It runs on
the event loop and must never block it, nor let one bad packet stop it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode

from onebox.dns.zone import Zone
from onebox.errors import Conflict, InvalidInput

log = logging.getLogger(__name__)

Address = tuple[str, int]
StreamAnswer = Callable[[bytes], Awaitable[bytes | None]]

# RFC 1035: a reply over UDP to a query without EDNS holds at most 512 bytes.
UDP_PLAIN_LIMIT = 512
TCP_LIMIT = 65535
FORWARD_TIMEOUT = 2.0
MAX_IN_FLIGHT = 1024
CACHE_SIZE = 50_000
TCP_IDLE = 10.0
MAX_STREAMS = 256  # open TCP connections; clients fall back to UDP or retry
# Bursts at line rate outrun one Python thread for a moment; a deep queue absorbs them.
RECEIVE_BUFFER = 4 * 1024 * 1024
QR_BIT = 0x80


@dataclass
class Counters:
    """Totals since start, for metrics. A failure is a query we could not answer properly:
    malformed, an upstream that timed out or failed, or too many forwards in flight."""

    queries: int = 0
    cache_hits: int = 0
    forwarded: int = 0
    failures: int = 0


class _BadQuery(Exception):
    """A packet we cannot answer normally; `reply` is the error to send, or None to drop."""

    def __init__(self, reply: bytes | None) -> None:
        super().__init__()
        self.reply = reply


@dataclass
class _Pending:
    query: dns.message.Message
    client: Address
    front: asyncio.DatagramTransport
    limit: int
    timer: asyncio.TimerHandle


class DnsServer:
    """Serves one zone and forwards the rest to `upstream` (None: refuse the rest). Run it
    on one event loop and call set_zone on that loop's thread, as Docker events arrive."""

    def __init__(
        self,
        zone: Zone,
        upstream: Address | None,
        *,
        timeout: float = FORWARD_TIMEOUT,
        max_in_flight: int = MAX_IN_FLIGHT,
        cache_size: int = CACHE_SIZE,
        tcp_idle: float = TCP_IDLE,
    ) -> None:
        self._tally = Counters()  # forwarded, failures, and queries over TCP
        self._misses = 0  # datagrams the cache could not answer
        self.upstream = upstream
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.cache_size = cache_size
        self.tcp_idle = tcp_idle
        # The zone and the replies it gave travel together; set_zone swaps both at once.
        self.view: tuple[Zone, dict[bytes, bytes]] = (zone, {})
        self._pending: dict[int, _Pending] = {}
        self._tcp_forwards = 0
        self._front: asyncio.DatagramTransport | None = None
        self._front_side: _Front | None = None
        self._tcp: asyncio.Server | None = None
        self._upstream_udp: asyncio.DatagramTransport | None = None
        self._streams: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def zone(self) -> Zone:
        return self.view[0]

    @property
    def counters(self) -> Counters:
        """A snapshot of the totals; the hot path counts only datagrams, the rest derive."""
        datagrams = self._front_side.datagrams if self._front_side else 0
        return Counters(
            queries=datagrams + self._tally.queries,
            cache_hits=datagrams - self._misses,
            forwarded=self._tally.forwarded,
            failures=self._tally.failures,
        )

    @property
    def in_flight(self) -> int:
        return len(self._pending) + self._tcp_forwards

    def set_zone(self, zone: Zone) -> None:
        replies: dict[bytes, bytes] = {}
        self.view = (zone, replies)
        if self._front_side is not None:
            self._front_side.replies = replies
        log.debug(
            "DNS zone %s now has %d hosts (serial %d)", zone.domain, len(zone.hosts), zone.serial
        )

    async def start(self, host: str, port: int) -> None:
        """Listens on UDP and TCP on the same port; port 0 picks a free one, kept in `port`."""
        front_side = self._front_side = _Front(self)
        self._front, self._tcp = await listen(host, port, lambda: front_side, self._stream)
        self.port = self._front.get_extra_info("sockname")[1]
        if self.upstream is not None:
            try:
                self._upstream_udp = await _connect_upstream(self, self.upstream)
            except OSError as exc:
                await self.close()
                raise InvalidInput(
                    f"Upstream DNS server '{self.upstream[0]}:{self.upstream[1]}' cannot be used: "
                    f"{exc.strerror or exc}",
                    "give an IPv4 address and port that this host can reach, like 192.0.2.1:53",
                ) from exc
        log.info("Serving DNS for %s on %s:%d", self.zone.domain, host, self.port)

    async def close(self) -> None:
        for transport in (self._front, self._upstream_udp):
            if transport is not None:
                transport.close()
        for pending in self._pending.values():
            pending.timer.cancel()
        self._pending.clear()
        if self._tcp is not None:
            self._tcp.close()
        for task in list(self._streams):
            task.cancel()
        await asyncio.gather(*self._streams, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()
        self._front = self._upstream_udp = self._tcp = None

    def answer_datagram(
        self, data: bytes, client: Address, front: asyncio.DatagramTransport
    ) -> None:
        """A query the cache did not hold: answer, forward or reject it; never raise."""
        try:
            self._answer_datagram(data, client, front)
        except Exception:
            self._tally.failures += 1
            log.exception("Failed to answer a DNS query from %s", client)

    def _answer_datagram(
        self, data: bytes, client: Address, front: asyncio.DatagramTransport
    ) -> None:
        self._misses += 1
        zone, replies = self.view
        try:
            query = _parse(data)
        except _BadQuery as bad:
            self._tally.failures += 1
            if bad.reply is not None:
                front.sendto(bad.reply, client)
            return

        limit = _udp_limit(query)
        response = zone.answer(query)
        if response is None:
            self._forward_datagram(data, query, client, front, limit)
            return
        wire = self._render(response, limit)
        if len(replies) >= self.cache_size:
            replies.clear()
        replies[data[2:]] = wire[2:]
        front.sendto(wire, client)

    def _forward_datagram(
        self,
        data: bytes,
        query: dns.message.Message,
        client: Address,
        front: asyncio.DatagramTransport,
        limit: int,
    ) -> None:
        upstream = self._upstream_udp
        if upstream is None or self.in_flight >= self.max_in_flight:
            front.sendto(self._refusal(query), client)
            return
        qid = self._fresh_id()
        timer = asyncio.get_running_loop().call_later(self.timeout, self._expire, qid)
        self._pending[qid] = _Pending(query, client, front, limit, timer)
        self._tally.forwarded += 1
        upstream.sendto(qid.to_bytes(2, "big") + data[2:])

    def upstream_reply(self, data: bytes) -> None:
        qid = int.from_bytes(data[:2], "big")
        pending = self._pending.get(qid)
        if pending is None or not _answers(data, pending.query):
            return
        del self._pending[qid]
        pending.timer.cancel()
        reply = pending.query.id.to_bytes(2, "big") + data[2:]
        if len(reply) > pending.limit:
            reply = self._truncated(pending.query, data)
        pending.front.sendto(reply, pending.client)

    def _expire(self, qid: int) -> None:
        pending = self._pending.pop(qid, None)
        if pending is None:
            return
        self._tally.failures += 1
        log.debug("Upstream did not answer %s in %.1fs", pending.query.question[0], self.timeout)
        pending.front.sendto(self._error(pending.query, dns.rcode.SERVFAIL), pending.client)

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._streams) >= MAX_STREAMS:
            log.warning("Closing a DNS TCP connection: %d are open already", MAX_STREAMS)
            writer.close()
            return
        self._streams.add(task)
        try:
            await serve_stream(reader, writer, self._answer_stream, self.tcp_idle)
        finally:
            self._streams.discard(task)

    async def _answer_stream(self, data: bytes) -> bytes | None:
        self._tally.queries += 1
        try:
            query = _parse(data)
        except _BadQuery as bad:
            self._tally.failures += 1
            return bad.reply
        response = self.zone.answer(query)
        if response is not None:
            return self._render(response, TCP_LIMIT)
        if self.upstream is None or self.in_flight >= self.max_in_flight:
            return self._refusal(query)
        self._tally.forwarded += 1
        self._tcp_forwards += 1
        try:
            return await asyncio.wait_for(exchange_stream(self.upstream, data), self.timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            self._tally.failures += 1
            return self._error(query, dns.rcode.SERVFAIL)
        finally:
            self._tcp_forwards -= 1

    def _refusal(self, query: dns.message.Message) -> bytes:
        """REFUSED with no upstream to ask; SERVFAIL when too many forwards are in flight."""
        if self.upstream is None:
            return self._error(query, dns.rcode.REFUSED)
        self._tally.failures += 1
        return self._error(query, dns.rcode.SERVFAIL)

    def _render(self, response: dns.message.Message, limit: int) -> bytes:
        if self.upstream is not None:
            response.flags |= dns.flags.RA
        return response.to_wire(max_size=limit, prefer_truncation=True)

    def _error(self, query: dns.message.Message, rcode: dns.rcode.Rcode) -> bytes:
        response = dns.message.make_response(query)
        response.set_rcode(rcode)
        return self._render(response, UDP_PLAIN_LIMIT)

    def _truncated(self, query: dns.message.Message, upstream_reply: bytes) -> bytes:
        """An upstream reply too big for the client: its header and question, with TC."""
        response = dns.message.make_response(query)
        response.flags |= dns.flags.TC | (int.from_bytes(upstream_reply[2:4], "big") & 0x0580)
        response.set_rcode(dns.rcode.Rcode(upstream_reply[3] & 0x0F))
        return self._render(response, UDP_PLAIN_LIMIT)

    def _fresh_id(self) -> int:
        while True:
            qid = secrets.randbits(16)
            if qid not in self._pending:
                return qid


class _Front(asyncio.DatagramProtocol):
    """The hot path: a cached reply costs one dict lookup and one send, with no parsing."""

    transport: asyncio.DatagramTransport

    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.replies = server.view[1]  # swapped by set_zone along with the server's view
        self.datagrams = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.send = self.transport.sendto

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.datagrams += 1
        reply = self.replies.get(data[2:])
        if reply is not None:
            self.send(data[:2] + reply, addr)
            return
        self.server.answer_datagram(data, addr, self.transport)

    def error_received(self, exc: Exception) -> None:
        log.debug("DNS client socket error: %s", exc)


class _UpstreamSide(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            self.server.upstream_reply(data)
        except Exception:
            log.exception("Failed to relay an upstream DNS reply")

    def error_received(self, exc: Exception) -> None:
        # A refused port shows up here; the queries it concerns fail at their timeout.
        log.debug("Upstream DNS socket error: %s", exc)


async def _connect_upstream(server: DnsServer, upstream: Address) -> asyncio.DatagramTransport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _UpstreamSide(server), remote_addr=upstream
    )
    return transport


def _parse(data: bytes) -> dns.message.Message:
    """The query in `data`, or _BadQuery with the error reply it deserves."""
    if len(data) < 12 or data[2] & QR_BIT:
        raise _BadQuery(None)  # no header to answer, or a reply: answering could loop
    if (data[2] >> 3) & 0x0F != dns.opcode.QUERY:  # UPDATE, NOTIFY...: read before parsing,
        raise _BadQuery(_header_reply(data, dns.rcode.NOTIMP))  # their sections differ
    try:
        query = dns.message.from_wire(data)
    except Exception as exc:
        raise _BadQuery(_header_reply(data, dns.rcode.FORMERR)) from exc
    if query.edns > 0:  # RFC 6891: an EDNS version we do not speak gets BADVERS
        raise _BadQuery(_badvers(query))
    if len(query.question) != 1:
        raise _BadQuery(_header_reply(data, dns.rcode.FORMERR))
    return query


def _badvers(query: dns.message.Message) -> bytes:
    reply = dns.message.make_response(query)
    reply.use_edns(0, 0, 1232)
    reply.set_rcode(dns.rcode.BADVERS)
    return bytes(reply.to_wire())


def _header_reply(data: bytes, rcode: dns.rcode.Rcode) -> bytes:
    """A bare reply header for a query we cannot parse: same ID, opcode and RD, no records."""
    flags = QR_BIT | (data[2] & 0x79)
    return data[:2] + bytes([flags, int(rcode)]) + bytes(8)


def _udp_limit(query: dns.message.Message) -> int:
    return max(UDP_PLAIN_LIMIT, query.payload) if query.edns >= 0 else UDP_PLAIN_LIMIT


def _answers(reply: bytes, query: dns.message.Message) -> bool:
    """Whether an upstream reply is for this question: guards against stray or forged IDs."""
    try:
        question = dns.message.from_wire(reply, question_only=True).question
    except Exception:
        return False
    return len(question) == 1 and question[0] == query.question[0]


async def listen(
    host: str,
    port: int,
    datagrams: Callable[[], asyncio.DatagramProtocol],
    streams: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> tuple[asyncio.DatagramTransport, asyncio.Server]:
    """UDP and TCP listeners on one port. With port 0, UDP picks it and TCP follows; a few
    tries cover the rare port that is free for UDP but taken for TCP."""
    loop = asyncio.get_running_loop()
    for attempt in range(5):
        try:
            front, _ = await loop.create_datagram_endpoint(datagrams, local_addr=(host, port))
        except OSError as exc:
            raise _listen_error(host, port, exc) from exc
        bound = front.get_extra_info("sockname")[1]
        _deepen(front)
        try:
            return front, await asyncio.start_server(streams, host, bound)
        except OSError as exc:
            front.close()
            if port != 0 or attempt == 4:
                raise _listen_error(host, bound, exc) from exc
    raise AssertionError("unreachable")


def _listen_error(host: str, port: int, exc: OSError) -> Conflict:
    return Conflict(
        f"Cannot listen for DNS on {host}:{port}: {exc.strerror or exc}",
        "stop the program that holds this port, or choose another port",
    )


def _deepen(transport: asyncio.DatagramTransport) -> None:
    sock = transport.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    except OSError as exc:
        log.debug("Cannot enlarge the DNS receive buffer: %s", exc)


async def serve_stream(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: StreamAnswer, idle: float
) -> None:
    """Length-prefixed DNS messages on one connection (RFC 7766), answered in turn, until
    the client closes, stays quiet for `idle` seconds, or sends what we must drop."""
    try:
        while True:
            head = await asyncio.wait_for(reader.readexactly(2), idle)
            data = await asyncio.wait_for(reader.readexactly(int.from_bytes(head, "big")), idle)
            reply = await answer(data)
            if reply is None:
                return
            writer.write(len(reply).to_bytes(2, "big") + reply)
            await writer.drain()
    except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
        return
    except Exception:
        log.exception("Failed to answer a DNS query over TCP")
    finally:
        writer.close()


async def exchange_stream(server: Address, data: bytes) -> bytes:
    """One query and its reply over a fresh TCP connection."""
    reader, writer = await asyncio.open_connection(*server)
    try:
        writer.write(len(data).to_bytes(2, "big") + data)
        await writer.drain()
        length = int.from_bytes(await reader.readexactly(2), "big")
        return await reader.readexactly(length)
    finally:
        writer.close()
