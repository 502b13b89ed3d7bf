"""Entry point of the gateway container: `onebox-gateway run` serves the lab's data
planes, `onebox-gateway health` is Docker's health check."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable

import dns.message
import dns.query
import dns.rcode

from onebox.dashboard.plane import DashboardPlane
from onebox.dns.server import DnsServer
from onebox.dns.zone import Zone
from onebox.engine import Engine, connect
from onebox.gateway import settings as gateway_settings
from onebox.gateway.plane import Plane
from onebox.gateway.watcher import MachineView, Watcher
from onebox.proxy.forward import ForwardPlane
from onebox.proxy.reverse import ReverseProxyPlane, url_name
from onebox.proxy.socks import SocksPlane
from onebox.ssh.server import SshPlane

log = logging.getLogger(__name__)


def build_zone(settings: gateway_settings.Settings, views: list[MachineView], serial: int) -> Zone:
    hosts = {view.name: view.ip for view in views}
    # URL names lead to the gateway: its reverse proxy serves them on the machine's web port.
    extra = {}
    for view in views:
        for url in view.urls:
            name = url_name(settings.domain, url)
            if name is not None and name != settings.domain:
                extra[name.removesuffix(f".{settings.domain}")] = settings.gateway_ip
    return Zone(
        domain=settings.domain,
        subnets=(settings.subnet,),
        gateway_ip=settings.gateway_ip,
        hosts=hosts,
        extra=extra,
        serial=serial,
    )


class DnsPlane:
    """The lab's DNS server, fed a new zone after every change."""

    name = "dns"

    def __init__(self, settings: gateway_settings.Settings) -> None:
        self.settings = settings
        self.serial = 1
        self.server = DnsServer(build_zone(settings, [], 1), settings.upstream)

    async def start(self) -> None:
        await self.server.start("0.0.0.0", 53)

    def update(self, views: list[MachineView]) -> None:
        self.serial += 1
        self.server.set_zone(build_zone(self.settings, views, self.serial))

    async def close(self) -> None:
        await self.server.close()


def planes(settings: gateway_settings.Settings, engine: Engine) -> list[Plane]:
    """Every data plane the gateway runs, DNS first so names answer soonest. A plane
    that cannot be made is left out with a warning: the others, DNS above all, go on."""
    makers: list[tuple[str, Callable[[], Plane]]] = [
        ("reverse proxy", lambda: ReverseProxyPlane(settings)),
        ("SSH entry", lambda: SshPlane(settings, engine)),
        ("dashboard", lambda: DashboardPlane(settings, engine)),
        ("forward proxy", lambda: ForwardPlane(settings)),
        ("SOCKS5 proxy", lambda: SocksPlane(settings)),
    ]
    made: list[Plane] = [DnsPlane(settings)]
    for title, make in makers:
        try:
            made.append(make())
        except Exception:
            log.exception("The %s could not be set up; the gateway runs without it", title)
    return made


async def start_planes(candidates: list[Plane]) -> list[Plane]:
    """Starts each plane; DNS must start, any other that fails is logged and skipped."""
    started: list[Plane] = []
    for plane in candidates:
        try:
            await plane.start()
        except Exception:
            if plane.name == "dns":
                raise
            log.exception("The %s plane did not start; the gateway runs without it", plane.name)
            continue
        started.append(plane)
        log.info("Started %s", plane.name)
    return started


async def serve(settings: gateway_settings.Settings) -> None:
    engine = connect()
    loop = asyncio.get_running_loop()
    running = planes(settings, engine)

    def on_change(views: list[MachineView]) -> None:
        for plane in running:
            try:
                plane.update(views)
            except Exception:
                log.exception("The %s plane could not take the new machine list", plane.name)
        log.info("Lab '%s' now has %d machines", settings.lab, len(views))

    watcher = Watcher(engine, settings, loop)
    watcher.listeners.append(on_change)
    running[:] = await start_planes(running)
    watcher.start()
    log.info("Gateway of lab '%s' serving %s", settings.lab, settings.domain)

    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    watcher.stop()
    for plane in reversed(running):
        await plane.close()


def health() -> int:
    settings = gateway_settings.from_environment()
    query = dns.message.make_query(f"gateway.{settings.domain}", "A")
    try:
        reply = dns.query.udp(query, "127.0.0.1", port=53, timeout=2.0)
    except Exception as exc:
        print(f"DNS does not answer: {exc}", file=sys.stderr)
        return 1
    return 0 if reply.rcode() == dns.rcode.NOERROR else 1


def run() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    command = sys.argv[1] if len(sys.argv) > 1 else "run"
    if command == "health":
        sys.exit(health())
    if command != "run":
        sys.exit(f"unknown command {command!r}: use `run` or `health`")
    import uvloop

    uvloop.run(serve(gateway_settings.from_environment()))
