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
from collections.abc import Callable
from typing import Protocol, cast

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
