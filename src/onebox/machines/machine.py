"""Machine lifecycle inside one lab: create with a fixed address and the lab's DNS,
list, start, stop, restart, remove, exec, logs. A failed create leaves nothing."""

from __future__ import annotations

import io
import ipaddress
import logging
import tarfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import docker.errors
from docker.models.containers import Container

from onebox.addressing import allocator, names
from onebox.engine import Engine, Label
from onebox.engine.client import remove_quietly
from onebox.engine.labels import ROLE_MACHINE
from onebox.errors import Conflict, InvalidInput, NotFound, OperationFailed, StartFailed
from onebox.labs.lab import Lab, container_name, network_name, require_up
from onebox.state import lab_lock

log = logging.getLogger(__name__)

# A machine whose command ends within this time is taken as failed to start.
SETTLE_SECONDS = 0.5
# What a machine runs when its image offers only a shell: it stays up, like a computer.
# A number rather than `infinity`, which busybox's sleep does not take.
IDLE_COMMAND = ["sleep", "2147483647"]
SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash", "ash", "/bin/ash"}


@dataclass
class Machine:
    name: str
    ip: str
    fqdn: str
    state: str
    image: str
    id: str
    started_at: str = ""
    web_port: int = 80
    urls: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ip": self.ip,
            "fqdn": self.fqdn,
            "state": self.state,
            "image": self.image,
            "id": self.id[:12],
            "started_at": self.started_at,
            "web_port": self.web_port,
            "urls": self.urls,
        }


@dataclass
class CreateRequest:
    name: str
    image: str
    ip: str | None = None
    command: Sequence[str] = ()
    environment: dict[str, str] = field(default_factory=dict)
    web_port: int = 80
    urls: Sequence[str] = ()
    labels: dict[str, str] = field(default_factory=dict)
    test: bool = False
    # Used by stacks (compose files and templates); the defaults keep a plain machine.
    entrypoint: Sequence[str] | None = None
    volumes: dict[str, dict[str, str]] = field(default_factory=dict)  # source -> bind, mode
    healthcheck: dict[str, Any] | None = None  # Docker's shape: test, interval (ns), ...
    restart: str = "unless-stopped"  # or no, always, on-failure[:N]
    published: dict[str, tuple[str, int]] = field(default_factory=dict)  # "80/tcp" -> host
    aliases: Sequence[str] = ()  # more names on the lab network, besides the machine's
    files: dict[str, bytes] = field(default_factory=dict)  # absolute path -> content
    working_dir: str | None = None
    user: str | None = None
    wait_running: bool = True  # False for a one-shot job whose exit is not a failure


def machine_name(lab: str, container: Container) -> str:
    """The machine's name follows the container's, so `docker rename` renames it too."""
    prefix = f"{lab}_"
    if container.name.startswith(prefix):
        candidate = container.name[len(prefix) :]
        try:
            return names.check_machine_name(candidate)
        except InvalidInput:
            pass
    return str(container.labels.get(Label.MACHINE, container.name))


def describe(lab: Lab, container: Container) -> Machine:
    name = machine_name(lab.name, container)
    image_tags = container.attrs.get("Config", {}).get("Image", "")
    labels = dict(container.labels)
    urls = [u for u in labels.get(Label.URLS, "").split(",") if u]
    return Machine(
        name=name,
        ip=labels.get(Label.IP, ""),
        fqdn=f"{name}.{lab.domain}",
        state=container.status,
        image=image_tags,
        id=container.id,
        started_at=container.attrs.get("State", {}).get("StartedAt", ""),
        web_port=int(labels.get(Label.WEB_PORT, "80")),
        urls=urls,
        labels={k: v for k, v in labels.items() if not k.startswith("onebox.")},
    )


def list_machines(engine: Engine, lab: Lab) -> list[Machine]:
    machines = [describe(lab, c) for c in engine.machines(lab.name, full=True)]
    return sorted(machines, key=lambda m: ipaddress.IPv4Address(m.ip or "0.0.0.0"))


def find(engine: Engine, lab: Lab, name: str) -> Container:
    for container in engine.machines(lab.name):
        if machine_name(lab.name, container) == name.lower():
            return container
    raise NotFound(
        f"Machine '{name}' does not exist in lab '{lab.name}'",
        f"list machines with `onebox machine ls --lab {lab.name}`",
    )


def taken_addresses(engine: Engine, lab: Lab) -> dict[ipaddress.IPv4Address, str]:
    """Every address held in the lab, by running and stopped containers alike: Docker
    reserves only running ones, so stopped machines' labels are read too."""
    taken: dict[ipaddress.IPv4Address, str] = {lab.gateway_ip: "gateway"}
    for container in engine.lab_containers(lab.name):
        text = container.labels.get(Label.IP)
        if text:
            taken[ipaddress.IPv4Address(text)] = machine_name(lab.name, container)
    network = engine.client.networks.get(lab.network_id)
    for endpoint in (network.attrs.get("Containers") or {}).values():
        address = endpoint.get("IPv4Address", "").split("/")[0]
        if address:
            taken.setdefault(ipaddress.IPv4Address(address), endpoint.get("Name", "?"))
    return taken


def create(engine: Engine, lab: Lab, request: CreateRequest) -> Machine:
    name = names.check_machine_name(request.name)
    require_up(lab)
    if len(f"{name}.{lab.domain}") > 253:
        raise InvalidInput(
            f"Machine name '{name}' is too long for lab domain {lab.domain}",
            "choose a shorter name: the full name may have 253 characters",
        )
    _check_web_port(request.web_port)
    image = engine.require_image(request.image)
    command = list(request.command)
    if not command and request.entrypoint is None:
        command = _default_command(image.attrs.get("Config") or {})
    with lab_lock(lab.name):
        _check_unused(engine, lab, name)
        taken = taken_addresses(engine, lab)
        if request.ip:
            address = allocator.check_requested(lab.subnet, request.ip, taken)
        else:
            address = allocator.next_free(lab.subnet, taken)
        container = _create_container(engine, lab, name, str(address), command, request)
    if request.files:
        _copy_files(container, request.files)
    if not request.wait_running:
        container.start()
        return describe(lab, engine.client.containers.get(container.id))
    _start_and_settle(container, name, _restart_policy(request.restart))
    return describe(lab, engine.client.containers.get(container.id))


def _default_command(config: dict[str, Any]) -> list[str]:
    """The image's own command, unless it has none or only a shell, which would exit at
    once without a terminal: then the machine idles."""
    if config.get("Entrypoint"):
        return []
    cmd = config.get("Cmd") or []
    if not cmd or (len(cmd) == 1 and cmd[0] in SHELLS):
        return IDLE_COMMAND
    return []


def _check_web_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise InvalidInput(f"Web port {port} is not a TCP port", "give a port from 1 to 65535")


def _check_unused(engine: Engine, lab: Lab, name: str, renaming: str = "") -> None:
    """Refuses a name that a machine has, or that Docker still answers for a renamed one
    (its hostname); `renaming` is the id of a machine that may take its own old name back."""
    try:
        find(engine, lab, name)
    except NotFound:
        pass
    else:
        raise Conflict(
            f"Machine '{name}' already exists in lab '{lab.name}'",
            f"choose another name, or remove it with `onebox machine rm {name}`",
        )
    for container in engine.lab_containers(lab.name):
        # A machine's hostname is the name it was created with, kept in its label.
        if container.labels.get(Label.MACHINE) == name and container.id != renaming:
            current = machine_name(lab.name, container)
            raise Conflict(
                f"Name '{name}' is still the hostname of machine '{current}', which "
                "was renamed; Docker answers it inside the lab",
                f"choose another name, or remove '{current}' first",
            )
    other = engine.container(container_name(lab.name, name))
    if other is not None:
        raise Conflict(
            f"A container named '{other.name}' already exists and is not onebox's",
            f"rename or remove it (`docker rm {other.name}`), or choose another name",
        )


def _create_container(
    engine: Engine, lab: Lab, name: str, address: str, command: list[str], request: CreateRequest
) -> Container:
    labels = {
        **request.labels,
        Label.LAB: lab.name,
        Label.ROLE: ROLE_MACHINE,
        Label.MACHINE: name,
        Label.IP: address,
        Label.WEB_PORT: str(request.web_port),
    }
    if request.urls:
        labels[Label.URLS] = ",".join(request.urls)
    if request.test:
        labels[Label.TEST] = "1"
    net = network_name(lab.name)
    try:
        return engine.client.containers.create(
            request.image,
            command=command or None,
            name=container_name(lab.name, name),
            hostname=name,
            domainname=lab.domain,
            labels=labels,
            environment=request.environment,
            dns=[str(lab.gateway_ip)],
            dns_search=[lab.domain],
            # A machine that must settle first starts with no restart policy, so that one
            # which fails at once is seen failing rather than looping.
            restart_policy=_restart_policy(request.restart if not request.wait_running else "no"),
            init=True,
            detach=True,
            tty=False,
            network=net,
            networking_config={net: engine.endpoint(address, aliases=[name, *request.aliases])},
            entrypoint=list(request.entrypoint) if request.entrypoint is not None else None,
            volumes=request.volumes or None,
            healthcheck=request.healthcheck,
            ports=request.published or None,
            working_dir=request.working_dir,
            user=request.user,
        )
    except docker.errors.APIError as exc:
        raise OperationFailed(
            f"Could not create machine '{name}': {exc.explanation}",
            "check the image and command, then retry",
        ) from exc


def _restart_policy(text: str) -> dict[str, Any]:
    name, _, retries = text.partition(":")
    policy: dict[str, Any] = {"Name": name}
    if retries:
        policy["MaximumRetryCount"] = int(retries)
    return policy


def _copy_files(container: Container, files: dict[str, bytes]) -> None:
    """Puts files in the created machine before it starts; missing folders are made."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, content in files.items():
            entry = tarfile.TarInfo(path.lstrip("/"))
            entry.size, entry.mode = len(content), 0o644
            tar.addfile(entry, io.BytesIO(content))
    try:
        container.put_archive("/", buffer.getvalue())
    except docker.errors.APIError as exc:
        remove_quietly(container)
        raise OperationFailed(
            f"Could not copy files into '{container.name}': " f"{exc.explanation}",
            "check the config targets",
        ) from exc


def _start_and_settle(container: Container, name: str, restart: dict[str, Any]) -> None:
    """Starts the machine and waits a moment: a command that exits at once is a failed
    create, and the container goes, freeing its address."""
    try:
        container.start()
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline:
            container.reload()
            if container.status not in ("created", "running"):
                break
            time.sleep(0.1)
        container.reload()
        if container.status == "running":
            container.update(restart_policy=restart)
            return
        state = container.attrs.get("State", {})
        tail = container.logs(tail=5).decode(errors="replace").strip()
        reason = f"its command exited with code {state.get('ExitCode')}"
        if tail:
            reason += f"; last output:\n{tail}"
    except docker.errors.APIError as exc:
        reason = str(exc.explanation)
    remove_quietly(container)
    raise StartFailed(
        f"Machine '{name}' did not start: {reason}",
        "read its last output above; give the image what it asks for (--env "
        "KEY=VALUE), or a command that keeps running (after `--`)",
    )


def start(engine: Engine, lab: Lab, name: str) -> Machine:
    require_up(lab)
    container = find(engine, lab, name)
    container.start()
    container.reload()
    return describe(lab, container)


def stop(engine: Engine, lab: Lab, name: str, timeout: int = 5) -> Machine:
    container = find(engine, lab, name)
    container.stop(timeout=timeout)
    container.reload()
    return describe(lab, container)


def restart(engine: Engine, lab: Lab, name: str, timeout: int = 5) -> Machine:
    require_up(lab)
    container = find(engine, lab, name)
    container.restart(timeout=timeout)
    container.reload()
    return describe(lab, container)


def remove(engine: Engine, lab: Lab, name: str) -> Machine:
    with lab_lock(lab.name):
        container = find(engine, lab, name)
        machine = describe(lab, container)
        remove_quietly(container)
    machine.state = "removed"
    return machine


def rename(engine: Engine, lab: Lab, name: str, new_name: str) -> Machine:
    new = names.check_machine_name(new_name)
    with lab_lock(lab.name):
        container = find(engine, lab, name)
        _check_unused(engine, lab, new, renaming=container.id)
        old = machine_name(lab.name, container)
        container.rename(container_name(lab.name, new))
        container.reload()
        _move_alias(engine, lab, container, old, new)
        container.reload()
    return describe(lab, container)


def _move_alias(engine: Engine, lab: Lab, container: Container, old: str, new: str) -> None:
    """Docker keeps a network alias for the machine's bare name inside the lab; it is
    fixed per endpoint, so the endpoint is made again with the new one and the same
    address. Docker also answers the machine's hostname, which cannot change without
    recreating the container: the old bare name keeps working inside the lab, and
    `_check_unused` keeps it from being given to another machine."""
    endpoint = container.attrs["NetworkSettings"]["Networks"].get(network_name(lab.name)) or {}
    kept = [
        a
        for a in endpoint.get("Aliases") or []
        if a not in (old, new) and not container.id.startswith(a)
    ]
    network = engine.client.networks.get(lab.network_id)
    network.disconnect(container, force=True)
    network.connect(container, ipv4_address=container.labels[Label.IP], aliases=[new, *kept])


def logs(
    engine: Engine, lab: Lab, name: str, follow: bool = False, tail: int | str = "all"
) -> Iterator[bytes]:
    container = find(engine, lab, name)
    if follow:
        yield from container.logs(stream=True, follow=True, tail=tail)
    else:
        yield container.logs(tail=tail)
