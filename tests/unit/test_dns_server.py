"""The DNS server over real sockets on 127.0.0.1, with the stub as its only upstream. The
server runs on an event loop in the test's thread; queries go out from worker threads."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import pytest
import uvloop

from onebox.dns.server import DnsServer
from onebox.dns.stub import StubUpstream
from onebox.dns.zone import Zone

ZONE = Zone(
    domain="onebox.internal",
    subnets=(IPv4Network("10.80.0.0/24"),),
    gateway_ip=IPv4Address("10.80.0.2"),
    hosts={"web1": IPv4Address("10.80.0.10")},
)
LOCAL = "127.0.0.1"
WAIT = 5.0  # how long a test query waits for a reply before the test fails

Scenario = Callable[[], Coroutine[Any, Any, None]]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Scenario], None]:
    """Runs a scenario on the stock event loop and on uvloop, which the gateway uses."""
    if request.param == "uvloop":
        return lambda scenario: uvloop.run(scenario())
    return lambda scenario: asyncio.run(scenario())


@asynccontextmanager
async def serving(
    zone: Zone = ZONE, *, upstream: bool = True, records: int = 1, **options: Any
) -> AsyncIterator[tuple[DnsServer, StubUpstream]]:
    stub = StubUpstream(records=records)
    await stub.start(LOCAL, 0)
    server = DnsServer(zone, stub.endpoint if upstream else None, **options)
    try:
        await server.start(LOCAL, 0)
        yield server, stub
    finally:
        await server.close()
        await stub.close()


async def udp(server: DnsServer, query: dns.message.Message) -> dns.message.Message:
    return await asyncio.to_thread(dns.query.udp, query, LOCAL, WAIT, server.port)


async def tcp(server: DnsServer, query: dns.message.Message) -> dns.message.Message:
    return await asyncio.to_thread(dns.query.tcp, query, LOCAL, WAIT, server.port)


async def raw(server: DnsServer, packet: bytes, wait: float = WAIT) -> bytes | None:
    """Sends bytes as they are; the reply, or None if none came within `wait`."""

    def exchange() -> bytes | None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(wait)
            sock.sendto(packet, (LOCAL, server.port))
            try:
                return sock.recv(65535)
            except TimeoutError:
                return None

    return await asyncio.to_thread(exchange)


def addresses(reply: dns.message.Message) -> list[str]:
    return [str(rdata) for rrset in reply.answer for rdata in rrset]


def test_repeated_question_is_answered_from_cache_with_each_query_id(run: Any) -> None:
    async def scenario() -> None:
        async with serving() as (server, _):
            first = dns.message.make_query("web1.onebox.internal", "A")
            second = dns.message.make_query("web1.onebox.internal", "A")
            second.id = (first.id + 1) % 65536

            replies = [await udp(server, first), await udp(server, second)]

            assert [reply.id for reply in replies] == [first.id, second.id]
            assert all(addresses(reply) == ["10.80.0.10"] for reply in replies)
            assert all(reply.flags & dns.flags.AA for reply in replies)
            assert server.counters.queries == 2
            assert server.counters.cache_hits == 1

    run(scenario)


def test_set_zone_changes_answers_at_once(run: Any) -> None:
    async def scenario() -> None:
        async with serving() as (server, _):
            query = dns.message.make_query("web1.onebox.internal", "A")
            assert addresses(await udp(server, query)) == ["10.80.0.10"]

            moved = replace(ZONE, hosts={"web1": IPv4Address("10.80.0.11")}, serial=2)
            server.set_zone(moved)

            assert addresses(await udp(server, query)) == ["10.80.0.11"]
            assert addresses(await tcp(server, query)) == ["10.80.0.11"]
            server.set_zone(replace(ZONE, hosts={}))
            assert (await udp(server, query)).rcode() == dns.rcode.NXDOMAIN

    run(scenario)


def test_foreign_names_are_forwarded_with_the_client_id(run: Any) -> None:
    async def scenario() -> None:
        async with serving() as (server, stub):
            query = dns.message.make_query("www.example.test", "A")

            for ask in (udp, tcp):
                reply = await ask(server, query)
                assert reply.id == query.id
                assert addresses(reply) == ["192.0.2.53"]
                assert not reply.flags & dns.flags.AA
            assert stub.queries == 2
            assert server.counters.forwarded == 2
            assert server.counters.cache_hits == 0

    run(scenario)


def test_forwarded_answers_are_not_cached(run: Any) -> None:
    async def scenario() -> None:
        async with serving() as (server, stub):
            query = dns.message.make_query("www.example.test", "A")
            await udp(server, query)
            await udp(server, query)

            assert stub.queries == 2

    run(scenario)


def test_upstream_down_gives_servfail_after_the_timeout(run: Any) -> None:
    async def scenario() -> None:
        async with serving(timeout=0.2) as (server, stub):
            await stub.close()  # its port now refuses; the server hears nothing back
            query = dns.message.make_query("www.example.test", "A")

            for ask in (udp, tcp):
                reply = await ask(server, query)
                assert reply.id == query.id
                assert reply.rcode() == dns.rcode.SERVFAIL
            assert server.counters.failures == 2
            assert server.in_flight == 0

    run(scenario)


def test_forwards_past_the_in_flight_bound_get_servfail(run: Any) -> None:
    async def scenario() -> None:
        async with serving(max_in_flight=0) as (server, stub):
            reply = await udp(server, dns.message.make_query("www.example.test", "A"))

            assert reply.rcode() == dns.rcode.SERVFAIL
            assert stub.queries == 0

    run(scenario)


def test_without_upstream_foreign_names_are_refused(run: Any) -> None:
    async def scenario() -> None:
        async with serving(upstream=False) as (server, _):
            query = dns.message.make_query("www.example.test", "A")

            assert (await udp(server, query)).rcode() == dns.rcode.REFUSED
            assert (await tcp(server, query)).rcode() == dns.rcode.REFUSED
            local = await udp(server, dns.message.make_query("web1.onebox.internal", "A"))
            assert addresses(local) == ["10.80.0.10"]
            assert not local.flags & dns.flags.RA

    run(scenario)


def test_malformed_packets_get_formerr_or_nothing_and_the_server_lives_on(run: Any) -> None:
    async def scenario() -> None:
        async with serving() as (server, _):
            good = dns.message.make_query("web1.onebox.internal", "A")
            wire = good.to_wire()

            assert await raw(server, b"\x12\x34\x01", wait=0.3) is None  # no header
            garbage = await raw(server, b"\xab\xcd\x01\x00\x00\x01" + b"\xff" * 20)
            assert garbage is not None
            assert garbage[:2] == b"\xab\xcd"
            assert dns.message.from_wire(garbage).rcode() == dns.rcode.FORMERR
            cut = await raw(server, wire[:-3])
            assert cut is not None and dns.message.from_wire(cut).rcode() == dns.rcode.FORMERR
            as_reply = dns.message.make_response(good).to_wire()
            assert await raw(server, as_reply, wait=0.3) is None  # never answer a reply

            assert addresses(await udp(server, good)) == ["10.80.0.10"]
            assert server.counters.failures == 4

    run(scenario)


def test_questions_we_cannot_take_get_formerr_or_notimp(run: Any) -> None:
    async def scenario() -> None:
        async with serving() as (server, _):
            empty = dns.message.Message()
            assert (await udp(server, empty)).rcode() == dns.rcode.FORMERR
            notify = dns.message.make_query("onebox.internal", "SOA")
            notify.set_opcode(dns.opcode.NOTIFY)
            assert (await udp(server, notify)).rcode() == dns.rcode.NOTIMP

    run(scenario)


def test_udp_reply_over_512_bytes_is_truncated_and_tcp_carries_it_whole(run: Any) -> None:
    async def scenario() -> None:
        async with serving(records=60) as (server, _):
            query = dns.message.make_query("big.example.test", "A")

            cut = await udp(server, query)
            assert cut.flags & dns.flags.TC
            assert cut.id == query.id
            whole = await tcp(server, query)
            assert not whole.flags & dns.flags.TC
            assert len(addresses(whole)) == 60

    run(scenario)


def test_udp_reply_within_the_edns_payload_is_not_truncated(run: Any) -> None:
    async def scenario() -> None:
        async with serving(records=60) as (server, _):
            query = dns.message.make_query("big.example.test", "A", use_edns=0, payload=4096)

            reply = await udp(server, query)
            assert not reply.flags & dns.flags.TC
            assert len(addresses(reply)) == 60
            assert reply.edns == 0

    run(scenario)


def test_tcp_connection_carries_several_queries(run: Any) -> None:
    async def scenario() -> None:
        async with serving() as (server, _):

            def two_queries() -> list[dns.message.Message]:
                with socket.create_connection((LOCAL, server.port), timeout=WAIT) as sock:
                    return [
                        dns.query.tcp(dns.message.make_query(name, "A"), LOCAL, WAIT, sock=sock)
                        for name in ("web1.onebox.internal", "www.example.test")
                    ]

            replies = await asyncio.to_thread(two_queries)
            assert [addresses(reply) for reply in replies] == [["10.80.0.10"], ["192.0.2.53"]]

    run(scenario)


def test_idle_tcp_connection_is_closed_by_the_server(run: Any) -> None:
    async def scenario() -> None:
        async with serving(tcp_idle=0.2) as (server, _):

            def wait_for_close() -> bytes:
                with socket.create_connection((LOCAL, server.port), timeout=WAIT) as sock:
                    return sock.recv(1)

            assert await asyncio.to_thread(wait_for_close) == b""

    run(scenario)


def test_update_is_not_implemented_and_unknown_edns_versions_get_badvers() -> None:
    import dns.update

    from onebox.dns.server import _BadQuery, _parse

    update = dns.update.UpdateMessage("lab.internal")
    update.add("x", 5, "A", "10.80.0.9")
    with pytest.raises(_BadQuery) as refused:
        _parse(update.to_wire())
    assert refused.value.reply is not None
    assert dns.message.from_wire(refused.value.reply).rcode() == dns.rcode.NOTIMP

    query = dns.message.make_query("web.lab.internal", "A", use_edns=1)
    with pytest.raises(_BadQuery) as versioned:
        _parse(query.to_wire())
    assert versioned.value.reply is not None
    assert dns.message.from_wire(versioned.value.reply).rcode() == dns.rcode.BADVERS
