"""The peers as containers: one image from Debian's packages (peers.Dockerfile, built FROM
onebox/base:bookworm and rebuilt only when that file changes), each peer started on the
bench lab's network at a fixed address with its configuration written in before start,
and the plain bridge network that `docker run` gets for the start and scale figures."""

from __future__ import annotations

import hashlib
import io
import logging
import socket
import tarfile
from pathlib import Path

import docker.errors

from bench.benchlab import PREFIX, BenchLab, Leftovers, wait_until
from onebox.addressing import subnet as subnets
from onebox.engine import Engine

log = logging.getLogger(__name__)

IMAGE = "onebox/bench-peers:latest"
RECIPE = Path(__file__).with_name("peers.Dockerfile")
RECIPE_LABEL = "onebox.bench.recipe"
PACKAGES = ("dnsmasq", "nginx", "haproxy", "tinyproxy", "squid")


def ensure_image(engine: Engine) -> str:
    recipe = RECIPE.read_bytes()
    digest = hashlib.sha256(recipe).hexdigest()[:16]
    current = engine.image(IMAGE)
    if current is not None and current.labels.get(RECIPE_LABEL) == digest:
        return IMAGE
    log.info("Building %s", IMAGE)
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        entry = tarfile.TarInfo("Dockerfile")
        entry.size = len(recipe)
        tar.addfile(entry, io.BytesIO(recipe))
    context.seek(0)
    engine.client.images.build(
        fileobj=context,
        custom_context=True,
        tag=IMAGE,
        rm=True,
        forcerm=True,
        labels={RECIPE_LABEL: digest},
    )
    return IMAGE


def versions(engine: Engine, leftovers: Leftovers) -> dict[str, str]:
    """The Debian version of each peer package inside the image."""
    query = ["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", *PACKAGES]
    container = engine.client.containers.create(
        IMAGE, command=query, name=_name("versions"), network_disabled=True
    )
    leftovers.containers.append(container.id)
    container.start()
    container.wait(timeout=60)
    text = container.logs().decode()
    container.remove(force=True)
    return dict(line.split(" ", 1) for line in text.splitlines() if " " in line)


def start(
    lab: BenchLab,
    leftovers: Leftovers,
    role: str,
    host: int,
    command: list[str],
    files: dict[str, str],
    port: int | None = None,
) -> str:
    """One peer at lab address .host, listening on TCP `port` when one is given; returns
    the address. Its resolver is loopback, so a lookup it might try never leaves it."""
    address = lab.address(host)
    net = f"{lab.name}_net"
    client = lab.engine.client
    container = client.containers.create(
        IMAGE,
        command=command,
        name=_name(f"{lab.name.removeprefix(PREFIX)}-{role}"),
        dns=["127.0.0.1"],
        detach=True,
        network=net,
        networking_config={net: lab.engine.endpoint(address)},
    )
    leftovers.containers.append(container.id)
    container.put_archive("/", _tar(files))
    container.start()
    log.info("Started peer %s at %s", role, address)
    if port is not None:
        wait_until(lambda: _listens(address, port), f"{role} to listen on {port}", 60)
    return address


def _listens(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def logs(lab: BenchLab, container_id: str) -> str:
    try:
        return str(lab.engine.client.api.logs(container_id, tail=20).decode(errors="replace"))
    except docker.errors.NotFound:
        return ""


def plain_network(engine: Engine, leftovers: Leftovers, tag: str) -> tuple[str, str]:
    """A bridge network of the bench's own, as a user of `docker run` would make;
    returns its name and subnet."""
    from onebox.labs.lab import _taken_subnets

    name = _name(f"{tag}-net")
    for _ in range(5):  # another lab may take the subnet between the choice and the create
        subnet = subnets.choose(_taken_subnets(engine))
        ipam = docker.types.IPAMConfig(
            pool_configs=[
                docker.types.IPAMPool(subnet=str(subnet), gateway=str(subnet.network_address + 1))
            ]
        )
        try:
            network = engine.client.networks.create(name, driver="bridge", ipam=ipam)
        except docker.errors.APIError as exc:
            log.warning("Could not make network %s on %s: %s", name, subnet, exc)
            continue
        leftovers.networks.append(network.id)
        return name, str(subnet)
    raise RuntimeError(f"could not make the bench network {name}")


def _name(role: str) -> str:
    return f"{PREFIX}{role}"


def _tar(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, content in files.items():
            data = content.encode()
            entry = tarfile.TarInfo(path.lstrip("/"))
            entry.size, entry.mode = len(data), 0o644
            tar.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()
