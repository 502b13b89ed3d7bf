"""A DNS client for tests: real queries to the gateway's published port on loopback."""

from __future__ import annotations

import time

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype


def ask(name: str, port: int, qtype: str = "A", tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, qtype)
    if tcp:
        return dns.query.tcp(query, "127.0.0.1", port=port, timeout=3)
    return dns.query.udp(query, "127.0.0.1", port=port, timeout=3)


def addresses(reply: dns.message.Message) -> list[str]:
    return sorted(
        r.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for r in rrset
    )


def wait_for(name: str, port: int, expected: list[str], seconds: float = 10.0) -> list[str]:
    """Polls until the answer is `expected`; returns the last answer. A wait for the
    watcher, not a speed check: the deadline only stops a broken test."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            got = addresses(ask(name, port))
        except Exception:
            got = ["<no answer>"]
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.1)
