"""A fixed-answer DNS server on UDP and TCP, standing in for the upstream resolver in tests
and benchmarks, so that neither ever asks the host's resolver or the internet."""

from __future__ import annotations

import asyncio
import logging
from ipaddress import IPv4Address
from typing import cast

import dns.message
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from onebox.dns.server import Address, listen, serve_stream

log = logging.getLogger(__name__)

STUB_ADDRESS = IPv4Address("192.0.2.53")  # TEST-NET-1 (RFC 5737): routes nowhere


class StubUpstream:
    """Answers every A question (and ANY) with `records` addresses counting up from
    `address`, and every other type with an empty NOERROR. It never truncates, so a test
    can ask for a reply larger than UDP allows and watch the server in front cut it."""

    def __init__(
        self,
        address: IPv4Address = STUB_ADDRESS,
        records: int = 1,
        ttl: int = 60,
    ) -> None:
        self.address = address
        self.records = records
        self.ttl = ttl
        self.queries = 0
        self.host = "127.0.0.1"
        self.port = 0
        self._front: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    @property
    def endpoint(self) -> Address:
        return (self.host, self.port)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._front, self._tcp = await listen(host, port, lambda: _StubSide(self), self._stream)
        self.host, self.port = self._front.get_extra_info("sockname")[:2]
        log.debug("Stub upstream DNS on %s:%d", host, self.port)

    async def close(self) -> None:
        if self._front is not None:
            self._front.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
        self._front = self._tcp = None

    def reply(self, data: bytes) -> bytes | None:
        self.queries += 1
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return None
        response = dns.message.make_response(query)
        question = query.question[0] if query.question else None
        if question is not None and question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
            addresses = [str(self.address + i) for i in range(self.records)]
            response.answer.append(
                dns.rrset.from_text_list(
                    question.name, self.ttl, dns.rdataclass.IN, dns.rdatatype.A, addresses
                )
            )
        return response.to_wire()

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_stream(reader, writer, self._reply_stream, idle=5.0)

    async def _reply_stream(self, data: bytes) -> bytes | None:
        return self.reply(data)


class _StubSide(asyncio.DatagramProtocol):
    transport: asyncio.DatagramTransport

    def __init__(self, stub: StubUpstream) -> None:
        self.stub = stub

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        reply = self.stub.reply(data)
        if reply is not None:
            self.transport.sendto(reply, addr)
