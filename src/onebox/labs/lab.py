"""Lab lifecycle: `up` creates or starts the network and the gateway, `down` stops
them, `destroy` removes everything onebox made for the lab. Everything a lab is comes
back from Docker labels; nothing is kept elsewhere."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors
from docker.models.containers import Container
from docker.models.networks import Network

from onebox.addressing import allocator, names
from onebox.addressing import subnet as subnets
from onebox.addressing.upstream import parse_upstream
from onebox.engine import Engine, Label
from onebox.engine.client import remove_quietly
from onebox.engine.labels import ROLE_GATEWAY, ROLE_NETWORK
from onebox.errors import Conflict, NotFound, OperationFailed
from onebox.labs import ports as portmap
from onebox.state import lab_lock, lock, lock_dir, state_dir

log = logging.getLogger(__name__)

Report = Callable[[str], None]
DOCKER_SOCKET = "/var/run/docker.sock"


@dataclass
class Lab:
    name: str
    domain: str
    subnet: ipaddress.IPv4Network
    network_id: str
    gateway_ip: ipaddress.IPv4Address
    ports: dict[str, int] = field(default_factory=dict)
    bind: str = "127.0.0.1"
    allow: tuple[str, ...] = ()  # client networks the forward proxy serves when shared
    upstream: str = ""
    gateway_state: str = "missing"
    gateway_health: str = "unknown"

    @property
    def host(self) -> str:
        """Where this host reaches the lab's entry points."""
        return "127.0.0.1" if self.bind == "0.0.0.0" else self.bind

    def as_dict(self) -> dict[str, Any]:
        host = self.host
        return {
            "lab": self.name,
            "domain": self.domain,
            "subnet": str(self.subnet),
            "gateway": {
                "ip": str(self.gateway_ip),
                "state": self.gateway_state,
                "health": self.gateway_health,
                "bind": self.bind,
                "allow": list(self.allow),
                "upstream": self.upstream or "host resolvers",
                **{f"{name}_port": port for name, port in self.ports.items()},
                "pac_url": f"http://{host}:{self.ports.get('proxy', 0)}/proxy.pac",
                "dashboard_url": f"http://{host}:{self.ports.get('dashboard', 0)}/",
            },
        }


def require_up(lab: Lab) -> None:
    """Machines made or started while the gateway is down would have no DNS."""
    if lab.gateway_state != "running":
        raise Conflict(
            f"Lab '{lab.name}' is down (its gateway is {lab.gateway_state})",
            f"bring it up with `onebox up --lab {lab.name}`",
        )


def container_name(lab: str, name: str) -> str:
    return f"{lab}_{name}"


def network_name(lab: str) -> str:
    return f"{lab}_net"


def load(engine: Engine, name: str) -> Lab:
    """The lab as Docker knows it; NotFound when it was never brought up."""
    network = engine.lab_network(name)
    if network is None:
        raise NotFound(
            f"Lab '{name}' does not exist",
            f"create it with `onebox up --lab {name}`, or list labs with " "`onebox lab ls`",
        )
    return _from_docker(network, engine.gateway(name))


def _from_docker(network: Network, gateway: Container | None) -> Lab:
    labels = network.attrs.get("Labels") or {}
    subnet = ipaddress.IPv4Network(labels[Label.SUBNET])
    lab = Lab(
        name=labels[Label.LAB],
        domain=labels[Label.DOMAIN],
        subnet=subnet,
        network_id=network.id,
        gateway_ip=allocator.gateway_address(subnet),
    )
    if gateway is not None:
        glabels = gateway.labels
        lab.ports = {k: int(v) for k, v in json.loads(glabels.get(Label.PORTS, "{}")).items()}
        lab.bind = glabels.get(Label.BIND, "127.0.0.1")
        lab.allow = tuple(a for a in glabels.get(Label.ALLOW, "").split(",") if a)
        lab.upstream = glabels.get(Label.UPSTREAM, "")
        lab.gateway_state = gateway.status
        health = gateway.attrs.get("State", {}).get("Health") or {}
        lab.gateway_health = health.get("Status", "none") if gateway.status == "running" else "-"
    return lab


def list_labs(engine: Engine) -> list[Lab]:
    labs = []
    for network in engine.lab_networks():
        name = (network.attrs.get("Labels") or {}).get(Label.LAB, "")
        labs.append(_from_docker(network, engine.gateway(name)))
    return sorted(labs, key=lambda lab: lab.name)


@dataclass
class UpRequest:
    name: str = "default"
    subnet: str | None = None
    domain: str | None = None
    upstream: str | None = None
    bind: str | None = None  # None keeps the gateway's (loopback for a new one)
    allow: tuple[str, ...] | None = None  # None keeps the gateway's (none for a new one)
    test: bool = False  # marks every object for the test suite's own clean-up


def up(engine: Engine, request: UpRequest, report: Report, gateway_image: str) -> tuple[Lab, bool]:
    """Creates or starts the lab; returns it and whether anything changed."""
    name = names.check_lab_name(request.name)
    if request.upstream is not None:
        parse_upstream(request.upstream)
    # The global lock keeps two new labs from choosing the same subnet or host ports.
    with lock("labs"), lab_lock(name):
        network = engine.lab_network(name)
        created = network is None
        if network is None:
            network = _create_network(engine, request, report)
        else:
            _check_same_settings(network, request)
        try:
            lab = _from_docker(network, None)
            changed = _ensure_gateway(engine, lab, request, report, gateway_image) or created
            changed |= _start_machines(engine, name, report)
            if changed:
                wait_until_answering(load(engine, name), report)
        except BaseException:
            if created:  # a new lab that could not come up leaves nothing behind
                _remove_lab_objects(engine, name, report)
            raise
        return load(engine, name), changed


def wait_until_answering(lab: Lab, report: Report, seconds: float = 60.0) -> None:
    """Waits until the gateway answers DNS on its host port: the sign that its planes
    have started. A gateway that never answers is an error that names its logs."""
    import dns.exception
    import dns.message
    import dns.query

    port = lab.ports.get("dns")
    if not port:
        return
    host = lab.host
    query = dns.message.make_query(f"gateway.{lab.domain}", "A")
    deadline = time.monotonic() + seconds
    report("Waiting for the gateway to answer")
    while time.monotonic() < deadline:
        try:
            dns.query.udp(query, host, port=port, timeout=0.5)
            return
        except (OSError, dns.exception.DNSException):
            time.sleep(0.2)
    raise OperationFailed(
        f"The gateway of lab '{lab.name}' did not answer DNS within " f"{seconds:.0f} s",
        f"read its log: `docker logs {lab.name}_gateway`",
    )


def _check_same_settings(network: Network, request: UpRequest) -> None:
    labels = network.attrs.get("Labels") or {}
    lab = labels[Label.LAB]
    if request.subnet and subnets.parse_subnet(request.subnet) != ipaddress.IPv4Network(
        labels[Label.SUBNET]
    ):
        raise Conflict(
            f"Lab '{lab}' already exists with subnet {labels[Label.SUBNET]}",
            f"leave --subnet out, or `onebox destroy --lab {lab}` first",
        )
    if request.domain and names.check_domain(request.domain) != labels[Label.DOMAIN]:
        raise Conflict(
            f"Lab '{lab}' already exists with domain {labels[Label.DOMAIN]}",
            f"leave --domain out, or `onebox destroy --lab {lab}` first",
        )


def _taken_subnets(engine: Engine) -> list[tuple[str, ipaddress.IPv4Network]]:
    """Docker networks first, so an overlap names the network rather than its route."""
    taken: list[tuple[str, ipaddress.IPv4Network]] = []
    for network in engine.all_networks():
        for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
            try:
                net = ipaddress.ip_network(config.get("Subnet", ""), strict=False)
            except ValueError:
                continue
            if isinstance(net, ipaddress.IPv4Network):
                taken.append((f"Docker network '{network.name}'", net))
    taken += [("a host route", net) for net in subnets.host_networks()]
    return taken


def _create_network(engine: Engine, request: UpRequest, report: Report) -> Network:
    domain = names.check_domain(request.domain or names.default_domain(request.name))
    for other in list_labs(engine):
        if other.domain == domain:
            raise Conflict(
                f"Domain '{domain}' is already used by lab '{other.name}'",
                "give this lab another --domain",
            )
    taken = _taken_subnets(engine)
    if request.subnet:
        subnet = subnets.parse_subnet(request.subnet)
        subnets.check_free(subnet, taken)
    else:
        subnet = subnets.choose(taken)
    report(f"Creating network {network_name(request.name)} ({subnet})")
    labels = {
        Label.LAB: request.name,
        Label.ROLE: ROLE_NETWORK,
        Label.DOMAIN: domain,
        Label.SUBNET: str(subnet),
    }
    if request.test:
        labels[Label.TEST] = "1"
    left_to_docker = allocator.docker_range(subnet)
    ipam = docker.types.IPAMConfig(
        pool_configs=[
            docker.types.IPAMPool(
                subnet=str(subnet),
                gateway=str(allocator.bridge_address(subnet)),
                iprange=str(left_to_docker) if left_to_docker else None,
            )
        ]
    )
    try:
        return engine.client.networks.create(
            network_name(request.name),
            driver="bridge",
            ipam=ipam,
            labels=labels,
            check_duplicate=True,
        )
    except docker.errors.APIError as exc:
        raise OperationFailed(
            f"Could not create network for lab '{request.name}': " f"{exc.explanation}",
            "check `docker network ls` for a clash, then retry",
        ) from exc


def _ensure_gateway(
    engine: Engine, lab: Lab, request: UpRequest, report: Report, image: str
) -> bool:
    current = engine.gateway(lab.name)
    image_id = engine.require_image(image).id
    _keep_sharing(request, current)
    if current is None:
        _create_gateway(engine, lab, request, report, image)
        return True
    reason = _gateway_difference(current, image_id, request)
    if reason is None:
        if current.status == "running":
            return False
        report(f"Starting gateway {current.name}")
        current.start()
        return True
    report(f"Replacing gateway {current.name}: {reason}")
    kept_ports = json.loads(current.labels.get(Label.PORTS, "{}")) or None
    if request.upstream is None:  # an `up` that does not name one keeps the current one
        request.upstream = current.labels.get(Label.UPSTREAM, "")
    remove_quietly(current)
    _create_gateway(engine, lab, request, report, image, kept_ports)
    return True


def _gateway_difference(gateway: Container, image_id: str, request: UpRequest) -> str | None:
    """Why the running gateway does not match the request, or None when it does."""
    labels = gateway.labels
    if gateway.attrs.get("Image") != image_id:
        return "a newer gateway image"
    if labels.get(Label.BIND) != request.bind:
        return f"entry points move to {request.bind}"
    if labels.get(Label.ALLOW, "") != ",".join(request.allow or ()):
        return "allowed client networks change"
    if request.upstream is not None and labels.get(Label.UPSTREAM) != request.upstream:
        return f"DNS upstream becomes {request.upstream or 'the host resolvers'}"
    return None


def _keep_sharing(request: UpRequest, gateway: Container | None) -> None:
    """Fills in the bind address and client networks an `up` leaves out: a shared lab
    stays shared until `onebox share --off`."""
    labels = gateway.labels if gateway is not None else {}
    if request.bind is None:
        request.bind = labels.get(Label.BIND, "127.0.0.1")
    if request.allow is None:
        request.allow = tuple(a for a in labels.get(Label.ALLOW, "").split(",") if a)


def _create_gateway(
    engine: Engine,
    lab: Lab,
    request: UpRequest,
    report: Report,
    image: str,
    ports: dict[str, int] | None = None,
) -> Container:
    """Creates and starts the gateway; `ports` keeps a replaced gateway's host ports."""
    bind, allow = request.bind or "127.0.0.1", ",".join(request.allow or ())
    if not ports or set(ports) != set(portmap.ENTRY_POINTS):
        used = [
            p for other in list_labs(engine) if other.name != lab.name for p in other.ports.values()
        ]
        ports = portmap.choose(bind, used)
    upstream = request.upstream or ""
    labels = {
        Label.LAB: lab.name,
        Label.ROLE: ROLE_GATEWAY,
        Label.PORTS: json.dumps(ports),
        Label.BIND: bind,
        Label.ALLOW: allow,
        Label.UPSTREAM: upstream,
        Label.IP: str(lab.gateway_ip),
    }
    if request.test:
        labels[Label.TEST] = "1"
    published: dict[str, tuple[str, int]] = {}
    for entry, (_, inner, protocols) in portmap.ENTRY_POINTS.items():
        for protocol in protocols:
            published[f"{inner}/{protocol}"] = (bind, ports[entry])
    environment = {
        "ONEBOX_LAB": lab.name,
        "ONEBOX_DOMAIN": lab.domain,
        "ONEBOX_SUBNET": str(lab.subnet),
        "ONEBOX_UPSTREAM": upstream,
        "ONEBOX_GATEWAY_IP": str(lab.gateway_ip),
        "ONEBOX_PORTS": json.dumps(ports),
        "ONEBOX_BIND": bind,
        "ONEBOX_ALLOW": allow,
        "ONEBOX_HOST_NAMES": _host_names(bind),
        # Launches from the dashboard skip registries as the CLI that made it did.
        "ONEBOX_OFFLINE": os.environ.get("ONEBOX_OFFLINE", ""),
    }
    name = container_name(lab.name, "gateway")
    report(f"Creating gateway {name} at {lab.gateway_ip}")
    try:
        container = engine.client.containers.create(
            image,
            name=name,
            hostname="gateway",
            domainname=lab.domain,
            labels=labels,
            environment=environment,
            ports=published,
            restart_policy={"Name": "unless-stopped"},
            volumes={
                DOCKER_SOCKET: {"bind": DOCKER_SOCKET, "mode": "rw"},
                _gateway_volume(engine, lab, request): {"bind": "/var/lib/onebox", "mode": "rw"},
                # The host's lock files, so that a machine created from the dashboard
                # and one from the CLI never take the same address.
                str(lock_dir()): {"bind": "/var/lib/onebox/locks", "mode": "rw"},
            },
            network=network_name(lab.name),
            detach=True,
            networking_config={network_name(lab.name): engine.endpoint(str(lab.gateway_ip))},
        )
    except docker.errors.APIError as exc:
        raise OperationFailed(
            f"Could not create gateway '{name}': {exc.explanation}",
            f"see `docker ps -a --filter name={name}`; then run `onebox up "
            f"--lab {lab.name}` again",
        ) from exc
    try:
        container.start()
    except docker.errors.APIError as exc:
        remove_quietly(container)
        raise OperationFailed(
            f"Could not start gateway '{name}': {exc.explanation}",
            "a host port may be taken; free it and run `onebox up` again",
        ) from exc
    return container


def _host_names(bind: str) -> str:
    """The names LAN neighbours use for this host, which a shared gateway answers to."""
    if bind.startswith("127."):
        return ""
    names = [socket.gethostname(), *(str(a) for a in subnets.host_addresses())]
    return ",".join(names)


def _gateway_volume(engine: Engine, lab: Lab, request: UpRequest) -> str:
    """The gateway's history and settings; made with labels so `destroy` finds it."""
    name = f"{lab.name}_gateway-data"
    labels = {Label.LAB: lab.name, Label.ROLE: ROLE_GATEWAY}
    if request.test:
        labels[Label.TEST] = "1"
    try:
        engine.client.volumes.get(name)
    except docker.errors.NotFound:
        engine.client.volumes.create(name, labels=labels)
    return name


def _stopped_by_down(lab: str) -> Path:
    return state_dir() / "labs" / f"{lab}.down.json"


def _start_machines(engine: Engine, lab: str, report: Report) -> bool:
    """Starts the machines that `down` stopped (all stopped ones when it left no note),
    so that a machine the user stopped on purpose stays stopped."""
    note = _stopped_by_down(lab)
    wanted: set[str] | None = None
    if note.exists():
        wanted = set(json.loads(note.read_text()))
    changed = False
    for machine in engine.machines(lab):
        if machine.status != "running" and (wanted is None or machine.id in wanted):
            report(f"Starting machine {machine.name}")
            machine.start()
            changed = True
    note.unlink(missing_ok=True)
    return changed


def down(engine: Engine, name: str, report: Report) -> bool:
    """Stops the machines, then the gateway; keeps everything, and notes which machines
    were running so that `up` starts those again."""
    load(engine, name)
    running = [m for m in engine.machines(name) if m.status in ("running", "restarting", "paused")]
    if running:
        note = _stopped_by_down(name)
        note.parent.mkdir(parents=True, exist_ok=True)
        earlier = set(json.loads(note.read_text())) if note.exists() else set()
        note.write_text(json.dumps(sorted(earlier | {m.id for m in running})))
    gateway = engine.gateway(name)
    changed = False
    for container in running + ([gateway] if gateway else []):
        if container.status in ("running", "restarting", "paused"):
            report(f"Stopping {container.name}")
            container.stop(timeout=5)
            changed = True
    return changed


def destroy(engine: Engine, name: str, report: Report) -> int:
    """Removes every container, volume and the network of the lab; returns how many."""
    with lab_lock(name):
        if engine.lab_network(name) is None and not engine.lab_containers(name):
            raise NotFound(f"Lab '{name}' does not exist", "list labs with `onebox lab ls`")
        return _remove_lab_objects(engine, name, report)


def _remove_network(network: Network, former: list[str]) -> None:
    """Docker 20.10 sometimes keeps an endpoint of a container it already removed, and then
    refuses to remove the network; a forced disconnect by the old name clears it."""
    try:
        remove_quietly(network)
        return
    except OperationFailed:
        log.warning("Network %s still lists endpoints; disconnecting them by force", network.name)
    for container_name in former:
        with contextlib.suppress(docker.errors.APIError):
            network.disconnect(container_name, force=True)
    try:
        remove_quietly(network)
    except OperationFailed as exc:
        raise OperationFailed(
            f"Docker will not remove network '{network.name}': {exc.message}",
            "restart dockerd, then run `onebox destroy` again",
        ) from exc


def _remove_lab_objects(engine: Engine, name: str, report: Report) -> int:
    network = engine.lab_network(name)
    containers = engine.lab_containers(name)
    volumes = engine.client.volumes.list(filters={"label": f"{Label.LAB}={name}"})
    for container in containers:
        report(f"Removing {container.name}")
        remove_quietly(container)
    for volume in volumes:
        report(f"Removing volume {volume.name}")
        volume.remove(force=True)
    if network is not None:
        report(f"Removing network {network.name}")
        _remove_network(network, [c.name for c in containers])
    _stopped_by_down(name).unlink(missing_ok=True)
    return len(containers) + len(volumes) + (network is not None)
