"""Scenario 8: the gateway's SSH entry with Debian's OpenSSH client. A login name is a
machine; commands, exit codes, a TTY, window size, scp and sftp reach the machine
through the engine; `-L` and `-J` reach lab machines only; wrong keys, unknown
machines and outside destinations are refused with a message that says why."""

from __future__ import annotations

import asyncio
import hashlib
import io
import ipaddress
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from tests.conftest import ONEBOX, PREFIX, LabHandle, new_name, onebox

BUSYBOX = "onebox/busybox:latest"
SSHD_DOCKERFILE = """FROM onebox/base:bookworm
RUN apt-get update \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
        openssh-server \\
    && rm -rf /var/lib/apt/lists/* && mkdir -p /run/sshd && ssh-keygen -A
"""
SSHD_COMMAND = (
    "mkdir -p /root/.ssh && printf '%s\\n' \"$AUTHKEY\" > /root/.ssh/authorized_keys"
    " && exec /usr/sbin/sshd -D -e"
)
WEB_COMMAND = "echo hello-from-web > /var/www/index.html && exec httpd -f -p 80 -h /var/www"
TEST_NET = "192.0.2.10"  # RFC 5737: documentation only, never routed
DEADLINE = 60.0


@pytest.fixture(scope="module")
def sshd_image(engine: Any) -> Iterator[str]:
    """A machine image with a real sshd, scp and sftp-server, made for this module."""
    tag = f"{new_name('sshd')}:latest"
    image, _ = engine.client.images.build(
        fileobj=io.BytesIO(SSHD_DOCKERFILE.encode()), tag=tag, labels={"onebox.test": "1"}, rm=True
    )
    try:
        yield tag
    finally:
        engine.client.images.remove(image.id, force=True)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "obtest@host", "-f", str(where)],
        check=True,
    )
    return where


@pytest.fixture(scope="module")
def port(lab: LabHandle, key: Path) -> int:
    onebox("ssh", "add-key", f"{key}.pub", "--lab", lab.name)
    number = int(lab.info["gateway"]["ssh_port"])
    wait_for_banner(number)
    return number


@pytest.fixture(scope="module")
def config(key: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Client options in a file, so that `-J` hands them to the jump connection too."""
    path = tmp_path_factory.mktemp("sshcfg") / "config"
    path.write_text(
        f"Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
        f"  IdentityFile {key}\n  IdentitiesOnly yes\n  BatchMode yes\n"
        f"  LogLevel ERROR\n  ConnectTimeout 20\n"
    )
    return path


@pytest.fixture(scope="module")
def box(lab: LabHandle, sshd_image: str, key: Path, engine: Any) -> Iterator[dict[str, Any]]:
    """A machine running its own sshd; removed before its image is."""
    public = Path(f"{key}.pub").read_text().strip()
    options = ["--image", sshd_image, "--env", f"AUTHKEY={public}", "--lab", lab.name]
    made = onebox("machine", "create", "box", *options, "--json", "--", "sh", "-c", SSHD_COMMAND)
    info: dict[str, Any] = made.json()
    try:
        yield info
    finally:
        container = engine.container(info["id"])
        if container is not None:
            engine.client.api.remove_container(container.id, force=True, v=True)


@pytest.fixture(scope="module")
def web(lab: LabHandle, busybox_image: str) -> dict[str, Any]:
    """A busybox web server that answers `hello-from-web` on port 80."""
    options = ["--image", busybox_image, "--lab", lab.name, "--json"]
    made = onebox("machine", "create", "web", *options, "--", "sh", "-c", WEB_COMMAND)
    info: dict[str, Any] = made.json()
    return info


def wait_for_banner(port: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                if conn.recv(64).startswith(b"SSH-2.0-"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no SSH server answered on 127.0.0.1:{port}")
        time.sleep(0.3)


def ssh(
    config: Path, port: int, *args: str, stdin: bytes = b"", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["ssh", "-F", str(config), "-p", str(port), *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def scp(config: Path, port: int, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["scp", "-F", str(config), "-P", str(port), *args],
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- sessions -------------------------------------------------------------------------


def test_a_command_runs_in_the_machine_with_its_output(
    config: Path, port: int, box: dict[str, Any]
) -> None:
    done = ssh(config, port, "box@127.0.0.1", "hostname; echo to-stderr >&2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().strip() == "box"
    assert done.stderr.decode().strip() == "to-stderr"


def test_the_exit_code_is_carried_back(config: Path, port: int, box: dict[str, Any]) -> None:
    assert ssh(config, port, "box@127.0.0.1", "exit 42").returncode == 42


def test_input_reaches_the_command_and_ends_with_eof(
    config: Path, port: int, box: dict[str, Any]
) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB with every byte value
    done = ssh(config, port, "box@127.0.0.1", "md5sum", stdin=payload)
    assert done.stdout.decode().split()[0] == hashlib.md5(payload).hexdigest()


def test_a_pty_session_gets_a_terminal_and_term(
    config: Path, port: int, box: dict[str, Any]
) -> None:
    done = ssh(config, port, "-tt", "box@127.0.0.1", "tty; echo term=$TERM", env={"TERM": "vt220"})
    lines = done.stdout.decode().replace("\r", "").splitlines()
    assert lines[0].startswith("/dev/pts/")
    assert "term=vt220" in lines


def test_window_size_follows_the_client(
    lab: LabHandle, port: int, key: Path, box: dict[str, Any]
) -> None:
    async def session() -> str:
        async with asyncssh.connect(
            "127.0.0.1", port, username="box", client_keys=[str(key)], known_hosts=None
        ) as conn:
            process = await conn.create_process(
                term_type="xterm", term_size=(90, 30), encoding=None
            )
            process.stdin.write(b"stty size\n")
            first = await _read_until(process, b"30 90")
            process.change_terminal_size(132, 43)
            process.stdin.write(b"stty size; exit 7\n")
            rest = await asyncio.wait_for(process.stdout.read(), DEADLINE)
            await process.wait()
            assert process.exit_status == 7
            return (first + rest).decode(errors="replace")

    assert "43 132" in asyncio.run(session())


async def _read_until(process: Any, marker: bytes) -> bytes:
    seen = b""
    async with asyncio.timeout(DEADLINE):
        while marker not in seen:
            chunk = await process.stdout.read(4096)
            assert chunk, f"session ended before {marker!r}: {seen!r}"
            seen += chunk
    return seen


# -- files ----------------------------------------------------------------------------


def test_scp_copies_a_file_in_and_out(
    config: Path, port: int, box: dict[str, Any], tmp_path: Path
) -> None:
    original = tmp_path / "in.bin"
    original.write_bytes(bytes(range(256)) * 2048)
    assert scp(config, port, str(original), "box@127.0.0.1:/root/in.bin").returncode == 0
    back = tmp_path / "back.bin"
    assert scp(config, port, "box@127.0.0.1:/root/in.bin", str(back)).returncode == 0
    assert back.read_bytes() == original.read_bytes()


def test_legacy_scp_protocol_works_too(
    config: Path, port: int, box: dict[str, Any], tmp_path: Path
) -> None:
    original = tmp_path / "legacy.txt"
    original.write_text("over scp -t\n")
    assert scp(config, port, "-O", str(original), "box@127.0.0.1:/root/").returncode == 0
    assert ssh(config, port, "box@127.0.0.1", "cat /root/legacy.txt").stdout == b"over scp -t\n"


def test_sftp_lists_and_fetches(
    config: Path, port: int, box: dict[str, Any], tmp_path: Path
) -> None:
    ssh(config, port, "box@127.0.0.1", "echo via-sftp > /root/s.txt")
    done = subprocess.run(
        ["sftp", "-F", str(config), "-P", str(port), "-b", "-", "box@127.0.0.1"],
        input=f"ls /root\nget /root/s.txt {tmp_path}/\n".encode(),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert b"/root/s.txt" in done.stdout
    assert (tmp_path / "s.txt").read_text() == "via-sftp\n"


def test_sftp_into_a_machine_without_a_server_is_refused_clearly(
    config: Path, port: int, web: dict[str, Any]
) -> None:
    done = ssh(config, port, "-s", "web@127.0.0.1", "sftp")
    assert done.returncode != 0
    assert b"machine 'web' has no SFTP server" in done.stderr


# -- forwarding -----------------------------------------------------------------------


def test_local_forward_reaches_a_lab_machine_web_port(
    lab: LabHandle, config: Path, port: int, web: dict[str, Any]
) -> None:
    local = free_port()
    tunnel = subprocess.Popen(
        [
            "ssh",
            "-F",
            str(config),
            "-p",
            str(port),
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-L",
            f"127.0.0.1:{local}:web.{lab.domain}:80",
            "web@127.0.0.1",
        ],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            done = subprocess.run(
                ["curl", "-sS", "--max-time", "5", "--noproxy", "*", f"http://127.0.0.1:{local}/"],
                capture_output=True,
            )
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert done.stdout == b"hello-from-web\n", done.stderr
    finally:
        tunnel.terminate()
        tunnel.wait(timeout=10)


def test_jump_through_the_gateway_to_a_machine_sshd(
    config: Path, port: int, box: dict[str, Any]
) -> None:
    deadline = time.monotonic() + DEADLINE
    while True:  # the machine's sshd may still be starting
        done = ssh(
            config, 22, "-J", f"jump@127.0.0.1:{port}", "root@box", "echo through-sshd $(hostname)"
        )
        if done.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert done.stdout.decode().strip() == "through-sshd box", done.stderr


def test_forward_to_an_outside_address_is_refused(
    config: Path, port: int, box: dict[str, Any]
) -> None:
    done = ssh(config, port, "-o", "LogLevel=INFO", "-W", f"{TEST_NET}:80", "box@127.0.0.1")
    assert done.returncode != 0
    text = done.stderr.decode()
    assert "administratively prohibited" in text
    assert f"forwarding to {TEST_NET}:80 is refused: it is not a lab address" in text


def test_forward_to_the_host_bridge_address_is_refused(
    lab: LabHandle, config: Path, port: int
) -> None:
    bridge = ipaddress.IPv4Network(lab.info["subnet"])[1]
    done = ssh(config, port, "-o", "LogLevel=INFO", "-W", f"{bridge}:22", "box@127.0.0.1")
    assert "no machine of the lab has that address" in done.stderr.decode()


# -- refusals -------------------------------------------------------------------------


def test_an_unknown_machine_is_refused_with_how_to_list(
    lab: LabHandle, config: Path, port: int
) -> None:
    done = ssh(config, port, "nobody@127.0.0.1", "true")
    assert done.returncode == 255
    text = done.stderr.decode()
    assert "machine 'nobody' does not exist" in text
    assert f"onebox machine ls --lab {lab.name}" in text


def test_a_wrong_key_is_refused(
    lab: LabHandle, port: int, tmp_path: Path, box: dict[str, Any]
) -> None:
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    config = tmp_path / "config"
    config.write_text(
        f"Host *\n  UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n"
        f"  IdentityFile {other}\n  IdentitiesOnly yes\n  BatchMode yes\n"
    )
    done = ssh(config, port, "box@127.0.0.1", "true")
    assert done.returncode == 255
    assert b"Permission denied (publickey)" in done.stderr
    assert f"is not registered in lab '{lab.name}'".encode() in done.stderr


def test_password_login_is_not_offered(port: int) -> None:
    done = subprocess.run(
        [
            "ssh",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "BatchMode=yes",
            "-p",
            str(port),
            "box@127.0.0.1",
            "true",
        ],
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 255
    assert b"Permission denied (publickey)" in done.stderr


# -- keys and the host CLI ------------------------------------------------------------


def test_keys_are_listed_removed_and_added_back(
    lab: LabHandle, config: Path, port: int, key: Path, box: dict[str, Any]
) -> None:
    listed = onebox("ssh", "keys", "--lab", lab.name, "--json").json()
    assert [k["comment"] for k in listed] == ["obtest@host"]
    fingerprint = listed[0]["fingerprint"]
    onebox("ssh", "rm-key", fingerprint, "--lab", lab.name)
    assert ssh(config, port, "box@127.0.0.1", "true").returncode == 255
    again = onebox("ssh", "add-key", f"{key}.pub", "--lab", lab.name, "--json").json()
    assert [k["fingerprint"] for k in again["added"]] == [fingerprint]
    assert ssh(config, port, "box@127.0.0.1", "true").returncode == 0


def test_add_key_refuses_a_private_key(lab: LabHandle, key: Path) -> None:
    done = onebox("ssh", "add-key", str(key), "--lab", lab.name, check=False)
    assert done.code == 2
    assert "holds a private key" in done.stderr


def test_onebox_ssh_runs_a_command_with_streams_and_exit_code(
    lab: LabHandle, box: dict[str, Any]
) -> None:
    done = subprocess.run(
        [ONEBOX, "ssh", "--lab", lab.name, "box", "--", "sh", "-c", "cat; echo err >&2; exit 4"],
        input=b"piped-in\n",
        capture_output=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (4, b"piped-in\n", b"err\n")


def test_onebox_ssh_on_a_terminal_gets_a_tty(lab: LabHandle, box: dict[str, Any]) -> None:
    """`script` gives the CLI a terminal, as a person's shell would."""
    line = f"{ONEBOX} ssh --lab {lab.name} box -- sh -c 'tty; exit 6'"
    done = subprocess.run(
        ["script", "-qec", line, "/dev/null"],
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 6
    assert b"/dev/pts/" in done.stdout


def test_onebox_ssh_to_an_unknown_machine_says_how_to_list(lab: LabHandle) -> None:
    done = onebox("ssh", "nobody", "--lab", lab.name, check=False)
    assert done.code == 3
    assert "onebox machine ls" in done.stderr


def test_host_key_and_keys_survive_gateway_recreation(
    lab: LabHandle, engine: Any, config: Path, port: int, box: dict[str, Any]
) -> None:
    before = _host_key(port)
    gateway = engine.gateway(lab.name)
    assert gateway.name.startswith(PREFIX)
    engine.client.api.remove_container(gateway.id, force=True)
    onebox("up", "--lab", lab.name, "--upstream", lab.info["gateway"]["upstream"])
    new_port = int(onebox("status", "--lab", lab.name, "--json").json()["gateway"]["ssh_port"])
    wait_for_banner(new_port)
    assert _host_key(new_port) == before
    deadline = time.monotonic() + DEADLINE
    while (done := ssh(config, new_port, "box@127.0.0.1", "echo back")).returncode != 0:
        assert time.monotonic() < deadline, done.stderr  # the watcher's first snapshot
        time.sleep(0.3)
    assert done.stdout == b"back\n"


def _host_key(port: int) -> str:
    done = subprocess.run(
        ["ssh-keyscan", "-t", "ed25519", "-p", str(port), "127.0.0.1"],
        capture_output=True,
        timeout=30,
    )
    return done.stdout.decode().split()[-1]
