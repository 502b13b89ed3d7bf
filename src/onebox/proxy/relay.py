"""The hot path shared by the HTTP and SOCKS5 forward proxies: the connection to a lab
machine, the per-client connection count, and the reasons a connect can fail. Bytes are
passed on as they arrive, with the peer's reading paused while a write buffer is full,
so a fast sender never fills the gateway's memory."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import ipaddress
import logging
import os
import socket
from collections.abc import Callable, Mapping
from typing import Protocol, cast

from onebox.gateway.settings import Settings
from onebox.gateway.watcher import MachineView
from onebox.proxy import policy as policies

log = logging.getLogger(__name__)

# Write buffers pause the other side's reading above this; large enough that a bulk
# transfer moves in big writes, small enough that 256 clients cannot exhaust memory.
HIGH_WATER = 1024 * 1024
LOW_WATER = 256 * 1024
CONNECT_TIMEOUT = 5.0
# A tunnel's bytes move socket -> pipe -> socket inside the kernel; a bigger pipe moves
# more per call. Past the user's pipe budget the kernel refuses, and the default stays.
PIPE_SIZE = 1024 * 1024
SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)


class Owner(Protocol):
    """The client side of a relayed connection, told what its upstream does."""

    def upstream_data(self, data: bytes) -> None: ...

    def upstream_eof(self) -> bool: ...

    def upstream_lost(self) -> None: ...

    def upstream_paused(self, paused: bool) -> None: ...


class Upstream(asyncio.Protocol):
    """The proxy's connection to a lab machine; hands everything to its owner."""

    __slots__ = ("owner", "transport")

    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)

    def data_received(self, data: bytes) -> None:
        self.owner.upstream_data(data)

    def eof_received(self) -> bool:
        return self.owner.upstream_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.owner.upstream_lost()

    def pause_writing(self) -> None:
        self.owner.upstream_paused(True)

    def resume_writing(self) -> None:
        self.owner.upstream_paused(False)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class ConnectFailed(Exception):
    """A lab machine did not take the connection; `kind` picks the client's answer."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind  # "refused", "unreachable", "timeout"
        self.reason = reason


async def connect(
    owner: Owner, address: ipaddress.IPv4Address, port: int, timeout: float = CONNECT_TIMEOUT
) -> Upstream:
    """Opens a connection to an address the policy allowed, never to a name."""
    loop = asyncio.get_running_loop()
    target = f"{address}:{port}"
    try:
        _, upstream = await asyncio.wait_for(
            loop.create_connection(lambda: Upstream(owner), str(address), port), timeout
        )
    except TimeoutError as exc:
        raise ConnectFailed("timeout", f"{target} did not answer in {timeout:.0f}s") from exc
    except ConnectionRefusedError as exc:
        raise ConnectFailed("refused", f"{target} refused the connection") from exc
    except OSError as exc:
        kind = "unreachable" if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH) else ""
        raise ConnectFailed(
            kind or "refused", f"could not connect to {target}: {exc.strerror or exc}"
        ) from exc
    return upstream


class Limits:
    """Open connections per client address, so one client cannot take them all."""

    __slots__ = ("maximum", "open")

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.open: dict[str, int] = {}

    def acquire(self, client: str) -> bool:
        count = self.open.get(client, 0)
        if count >= self.maximum:
            return False
        self.open[client] = count + 1
        return True

    def release(self, client: str) -> None:
        count = self.open.get(client, 0) - 1
        if count > 0:
            self.open[client] = count
        else:
            self.open.pop(client, None)


def peer_host(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if peer else ""


def pause(transport: asyncio.Transport | None, paused: bool) -> None:
    """Pauses or resumes reading, quietly when the transport is closing."""
    if transport is None or transport.is_closing():
        return
    if paused:
        transport.pause_reading()
    else:
        transport.resume_reading()


class Orphan:
    """The owner of an upstream connection being dropped: ignores what it still says."""

    def upstream_data(self, data: bytes) -> None:
        pass

    def upstream_eof(self) -> bool:
        return False

    def upstream_lost(self) -> None:
        pass

    def upstream_paused(self, paused: bool) -> None:
        pass


def handoff(
    client: asyncio.Transport, upstream: Upstream, on_close: Callable[[], None]
) -> Splice | None:
    """Moves an established tunnel into the kernel; None (nothing changed) when a write
    is still buffered or the loop or system cannot hand out sockets."""
    up = upstream.transport
    if up is None or client.get_write_buffer_size() or up.get_write_buffer_size():
        return None
    raws = [client.get_extra_info("socket"), up.get_extra_info("socket")]
    if None in raws or not hasattr(os, "splice"):
        return None
    owned: list[socket.socket] = []
    try:
        for raw in raws:
            owned.append(socket.socket(fileno=os.dup(raw.fileno())))
        splice = Splice(owned[0], owned[1], on_close)
    except OSError as exc:
        log.debug("Tunnel stays in Python: %s", exc)
        for sock in owned:
            sock.close()
        return None
    upstream.owner = Orphan()
    # Closes the loop's descriptors only: the connections live on in ours.
    client.abort()
    up.abort()
    splice.start()
    return splice


class Splice:
    """A tunnel between two sockets moved into the kernel with splice(2): Python sees one
    callback per megabyte or so and never copies a byte. Closes both when done."""

    def __init__(self, a: socket.socket, b: socket.socket, on_close: Callable[[], None]):
        self.sockets = (a, b)
        self.on_close = on_close
        self.loop = asyncio.get_running_loop()
        self.closed = False
        for sock in self.sockets:
            sock.setblocking(False)
        self.pumps: list[_Pump] = []
        try:
            self.pumps += [_Pump(self, a, b), _Pump(self, b, a)]
        except OSError:
            for pump in self.pumps:
                pump.stop()
            raise

    def start(self) -> None:
        for pump in self.pumps:
            pump.start()

    def pump_done(self) -> None:
        if all(p.finished for p in self.pumps):
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for pump in self.pumps:
            pump.stop()
        for sock in self.sockets:
            sock.close()
        self.on_close()


class _Pump:
    """One direction of a Splice: reads into its pipe, writes the pipe out, and stops
    reading while the other socket cannot take more."""

    def __init__(self, splice: Splice, src: socket.socket, dst: socket.socket) -> None:
        self.splice = splice
        self.loop = splice.loop
        self.src, self.dst = src.fileno(), dst.fileno()
        self.dst_socket = dst
        self.pipe_r, self.pipe_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            fcntl.fcntl(self.pipe_w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            log.debug("Pipe stays at its default size (over the user's pipe budget)")
        self.in_pipe = 0
        self.eof = False
        self.finished = False

    def start(self) -> None:
        self.loop.add_reader(self.src, self._readable)

    def stop(self) -> None:
        if self.pipe_r < 0:
            return
        self.loop.remove_reader(self.src)
        self.loop.remove_writer(self.dst)
        os.close(self.pipe_r)
        os.close(self.pipe_w)
        self.pipe_r = self.pipe_w = -1

    def _readable(self) -> None:
        try:
            moved = os.splice(self.src, self.pipe_w, PIPE_SIZE, flags=SPLICE_FLAGS)
        except BlockingIOError:
            return
        except OSError:
            self.splice.close()  # reset by the peer: nothing more goes either way
            return
        if moved == 0:
            self.eof = True
            self.loop.remove_reader(self.src)
        self.in_pipe += moved
        self._drain()

    def _writable(self) -> None:
        self.loop.remove_writer(self.dst)
        self._drain()
        if not self.in_pipe and not self.eof and not self.splice.closed:
            self.loop.add_reader(self.src, self._readable)

    def _drain(self) -> None:
        while self.in_pipe:
            try:
                moved = os.splice(self.pipe_r, self.dst, self.in_pipe, flags=SPLICE_FLAGS)
            except BlockingIOError:
                self.loop.remove_reader(self.src)
                self.loop.add_writer(self.dst, self._writable)
                return
            except OSError:
                self.splice.close()
                return
            self.in_pipe -= moved
        if self.eof and not self.finished:
            self.finished = True
            with contextlib.suppress(OSError):  # the peer may be gone already
                self.dst_socket.shutdown(socket.SHUT_WR)
            self.splice.pump_done()


class Side(asyncio.Protocol):
    """A client's connection to one of the proxies, and what both proxies do with it:
    count it against the client's limit, open the upstream connection, relay a tunnel
    both ways with half-closes and backpressure, then hand the tunnel to the kernel."""

    def __init__(self, limits: Limits, sides: set[Side]) -> None:
        self.limits = limits
        self.sides = sides
        self.transport: asyncio.Transport | None = None
        self.host = ""
        self.counted = False
        self.closed = False
        self.tunneling = False
        self.touched = True
        self.client_eof = False
        self.upstream_eof_seen = False
        self.upstream: Upstream | None = None
        self.up_transport: asyncio.Transport | None = None
        self.queued: list[bytes] = []
        self.opening: asyncio.Task[None] | None = None
        self.splice: Splice | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)
        self.host = peer_host(transport)
        self.sides.add(self)

    def idle(self) -> bool:
        """Waiting for the client, outside a tunnel (where silence is normal)."""
        return not self.tunneling

    def admit(self) -> bool:
        """Counts this connection against the client's limit; False when it is full."""
        self.counted = self.limits.acquire(self.host)
        return self.counted

    def eof_received(self) -> bool:
        self.client_eof = True
        if not self.tunneling or self.up_transport is None or self.upstream_eof_seen:
            return False
        self.up_transport.write_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.splice is not None:
            return  # the tunnel lives on in the kernel; _spliced_closed ends it
        self.closed = True
        self.sides.discard(self)
        if self.counted:
            self.limits.release(self.host)
            self.counted = False
        if self.opening is not None:
            self.opening.cancel()
        self.drop_upstream()

    def pause_writing(self) -> None:
        pause(self.up_transport, True)

    def resume_writing(self) -> None:
        pause(self.up_transport, False)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.splice is not None:
            self.splice.close()
        elif self.transport is not None:
            self.transport.close()

    # -- the upstream connection

    def open_upstream(self, address: ipaddress.IPv4Address, port: int) -> None:
        self.drop_upstream()
        self.opening = asyncio.get_running_loop().create_task(self._open(address, port))

    async def _open(self, address: ipaddress.IPv4Address, port: int) -> None:
        try:
            upstream = await connect(self, address, port)
        except ConnectFailed as failure:
            self.connect_failed(failure)
            return
        finally:
            if self.opening is asyncio.current_task():
                self.opening = None
        if self.closed:
            upstream.close()
            return
        self.upstream, self.up_transport = upstream, upstream.transport
        self.connected(upstream)
        queued, self.queued = self.queued, []
        for data in queued:
            self.to_upstream(data)
        if self.tunneling:
            # uvloop sends writes at the end of the loop's turn; the handoff waits for that.
            asyncio.get_running_loop().call_soon(self._handoff, 3)

    def connected(self, upstream: Upstream) -> None:
        """The upstream took the connection; queued bytes follow this."""

    def connect_failed(self, failure: ConnectFailed) -> None:
        raise NotImplementedError

    def to_upstream(self, data: bytes) -> None:
        if self.up_transport is not None:
            self.up_transport.write(data)
        else:
            self.queued.append(data)

    def drop_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream.owner = Orphan()
            self.upstream.close()
        self.upstream = self.up_transport = None
        self.queued = []

    # -- what the upstream does, in a tunnel (the HTTP proxy adds its own for requests)

    def upstream_data(self, data: bytes) -> None:
        self.write(data)

    def upstream_eof(self) -> bool:
        self.upstream_eof_seen = True
        if not self.tunneling or self.transport is None or self.client_eof:
            return False  # the connection closes; upstream_lost decides what follows
        if not self.transport.is_closing():
            self.transport.write_eof()
        return True

    def upstream_lost(self) -> None:
        self.upstream = self.up_transport = None
        self.close()

    def upstream_paused(self, paused: bool) -> None:
        pause(self.transport, paused)

    def _handoff(self, tries: int) -> None:
        if self.closed or self.upstream is None or self.transport is None:
            return
        if self.client_eof or self.upstream_eof_seen:
            return  # half-closed already: let the loop finish it
        self.splice = handoff(self.transport, self.upstream, self._spliced_closed)
        if self.splice is None and tries > 1:
            asyncio.get_running_loop().call_soon(self._handoff, tries - 1)

    def _spliced_closed(self) -> None:
        self.splice = None
        self.upstream = self.up_transport = None
        self.connection_lost(None)


class ProxyServer:
    """A proxy's listener and what its connections share: the policy, the limits,
    counters; and a sweep that closes connections idle outside a tunnel."""

    kind = "proxy"
    idle_sweep = 60.0  # an idle connection goes after one to two sweeps

    def __init__(self, policy: policies.Policy, *, max_per_client: int) -> None:
        self.policy = policy
        self.limits = Limits(max_per_client)
        self.clients: set[Side] = set()
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self.refusals = 0
        self._sweeper: asyncio.TimerHandle | None = None

    def make_client(self) -> Side:
        raise NotImplementedError

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            self.make_client, host, port, backlog=1024, reuse_port=reuse_port or None
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self._sweeper = loop.call_later(self.idle_sweep, self._sweep)
        log.info("Serving the %s on %s:%d", self.kind, host, self.port)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.server is not None:
            self.server.close()
        for client in list(self.clients):
            client.close()
        if self.server is not None:
            await self.server.wait_closed()

    def _sweep(self) -> None:
        for client in list(self.clients):
            if client.idle() and not client.touched:
                client.close()
            client.touched = False
        self._sweeper = asyncio.get_running_loop().call_later(self.idle_sweep, self._sweep)


class ProxyPlane:
    """What each proxy is to the gateway: a listener, and a policy that takes every new
    machine list so names resolve inside the lab."""

    name = "proxy"
    port = 0

    def __init__(self, settings: Settings, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        self.policy = policies.from_environment(
            settings.domain, settings.subnet, settings.gateway_ip, self.environ
        )
        self.max_per_client = policies.max_per_client(self.environ)
        self.listener: ProxyServer | None = None

    async def start(self) -> None:
        assert self.listener is not None
        await self.listener.start("0.0.0.0", self.port)

    def update(self, views: list[MachineView]) -> None:
        self.policy.set_machines(views)

    async def close(self) -> None:
        if self.listener is not None:
            await self.listener.close()
