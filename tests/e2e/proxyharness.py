"""Runs the HTTP and SOCKS5 forward proxies with the real policy of a made-up lab
(lab.internal, 10.88.5.0/24, a machine web at .10) on 127.0.0.1, for a test that runs
it inside a network namespace with no route out. Prints the two ports, then serves until
it is terminated: `python -m tests.e2e.proxyharness`."""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import sys

import uvloop

from onebox.proxy.forward import ForwardProxy
from onebox.proxy.policy import Machine, Policy
from onebox.proxy.socks import SocksProxy

SUBNET = ipaddress.IPv4Network("10.88.5.0/24")


async def serve() -> None:
    policy = Policy("lab.internal", SUBNET, SUBNET.network_address + 2)
    policy.set_machines([Machine("web", SUBNET.network_address + 10)])
    forward = ForwardProxy(policy, max_per_client=16, pac_fallback="127.0.0.1:3128")
    socks = SocksProxy(policy, max_per_client=16)
    await forward.start("127.0.0.1", 0)
    await socks.start("127.0.0.1", 0)
    sys.stdout.write(f"{forward.port} {socks.port}\n")
    sys.stdout.flush()
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    await stopped.wait()
    await forward.close()
    await socks.close()


if __name__ == "__main__":
    uvloop.run(serve())
