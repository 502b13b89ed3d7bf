"""One SSH session is one process in a machine: a shell, a command, scp or the SFTP
server, started through the engine and wired to the SSH channel (streams, TTY, window
size, exit status). It decides what to run; the caller decides which machine."""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import asyncssh

from onebox.engine import Engine, attach
from onebox.errors import OneboxError

log = logging.getLogger(__name__)

# A login shell: bash where the image has it, else sh (busybox, minimal images).
LOGIN_SHELL = [
    "/bin/sh",
    "-c",
    "if command -v bash >/dev/null 2>&1; then exec bash -l; fi; " "exec sh -l",
]
SFTP_SERVERS = (
    "/usr/lib/openssh/sftp-server",
    "/usr/libexec/openssh/sftp-server",
    "/usr/lib/sftp-server",
)
NO_SFTP = 127
REFUSED = 255
INPUT_HIGH_WATER = 16  # chunks queued for the machine before the client is paused


@dataclass(frozen=True)
class Target:
    """The machine a session runs in, or why there is none."""

    machine: str
    container_id: str = ""
    refusal: str = ""


def sftp_command(machine: str) -> list[str]:
    """Runs the machine's own SFTP server, or says on stderr how to get one."""
    tries = "".join(f"[ -x {path} ] && exec {path}; " for path in SFTP_SERVERS)
    message = (
        f"onebox: machine '{machine}' has no SFTP server, so sftp and scp (which "
        "speaks SFTP) cannot work; install it in the machine (`apt-get install "
        "openssh-sftp-server`), or use `scp -O` where the machine has scp"
    )
    return ["/bin/sh", "-c", f"{tries}echo {shlex.quote(message)} >&2; exit {NO_SFTP}"]


def command_for(machine: str, command: str | None, subsystem: str | None) -> list[str]:
    """The argv to start for a shell, exec or subsystem request. Like sshd, an exec
    request's command is a shell command line."""
    if subsystem == "sftp":
        return sftp_command(machine)
    if subsystem:
        message = f"onebox: the SSH entry offers no '{subsystem}' subsystem, only sftp"
        return ["/bin/sh", "-c", f"echo {shlex.quote(message)} >&2; exit 1"]
    if command:
        return ["/bin/sh", "-c", command]
    return list(LOGIN_SHELL)


def environment(requested: Mapping[str, str], terminal: str | None) -> dict[str, str]:
    """The client's locale settings (OpenSSH sends LANG and LC_*) and its TERM."""
    env = {k: v for k, v in requested.items() if k == "LANG" or k.startswith("LC_")}
    if terminal:
        env["TERM"] = terminal
    return env


class MachineSession(asyncssh.SSHServerSession[bytes]):
    """Accepts shell, exec and any subsystem request, then runs it in the machine that
    `find` names; input, output and window changes flow with back-pressure both ways."""

    def __init__(self, engine: Engine, find: Callable[[], Target]) -> None:
        self.engine = engine
        self.find = find
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None
        self.running: attach.Attached | None = None
        self.task: asyncio.Task[None] | None = None
        # Input and window sizes share one queue: a resize lands before the keys after it.
        self.input: asyncio.Queue[bytes | tuple[int, int] | None] = asyncio.Queue()
        self.writable = asyncio.Event()
        self.writable.set()

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self.chan = chan

    def pty_requested(
        self, term_type: str, term_size: tuple[int, int, int, int], term_modes: Mapping[int, int]
    ) -> bool:
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        return True

    def session_started(self) -> None:
        self.task = asyncio.create_task(self._run())

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self.input.put_nowait(data)
        if self.chan is not None and self.input.qsize() >= INPUT_HIGH_WATER:
            self.chan.pause_reading()

    def eof_received(self) -> bool:
        self.input.put_nowait(None)
        return True  # half open: output still flows after the client's input ends

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        self.input.put_nowait((width, height))

    def break_received(self, msec: int) -> bool:
        return False

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self.running is not None:
            self.running.close()

    async def _run(self) -> None:
        assert self.chan is not None
        chan = self.chan
        target = self.find()
        if target.refusal:
            chan.write_stderr(f"{target.refusal}\r\n".encode())
            chan.exit(REFUSED)
            return
        terminal = chan.get_terminal_type()
        argv = command_for(target.machine, chan.get_command(), chan.get_subsystem())
        try:
            self.running = await attach.start(
                self.engine,
                target.container_id,
                argv,
                tty=terminal is not None,
                env=environment(chan.get_environment(), terminal),
            )
        except OneboxError as exc:
            chan.write_stderr(f"onebox: {exc.message}\r\n".encode())
            chan.exit(REFUSED)
            return
        width, height, _, _ = chan.get_terminal_size()
        await self.running.resize(width, height)
        feeding = asyncio.create_task(self._feed(self.running))
        try:
            code = await self._drain(self.running)
        finally:
            feeding.cancel()
            await asyncio.gather(feeding, return_exceptions=True)
            self.running.close()
        log.debug("session in '%s' ended with %d", target.machine, code)
        chan.exit(code)

    async def _feed(self, running: attach.Attached) -> None:
        """Client -> machine, resuming the client once the queue has drained."""
        while (data := await self.input.get()) is not None:
            if isinstance(data, tuple):
                await running.resize(*data)
                continue
            await running.write(data)
            if self.chan is not None and self.input.empty():
                self.chan.resume_reading()
        running.close_stdin()

    async def _drain(self, running: attach.Attached) -> int:
        """Machine -> client until the process closes its output; then its exit code."""
        assert self.chan is not None
        while (chunk := await running.read()) is not None:
            stream, data = chunk
            await self.writable.wait()
            if stream == attach.STDERR:
                self.chan.write_stderr(data)
            else:
                self.chan.write(data)
        return await running.exit_code()
