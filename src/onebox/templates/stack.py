"""Stacks: the machines made together from one compose project. `up` makes each service a
machine in start order, waiting on each dependency's condition (started, healthy by its
Docker health check, or completed) and never on a fixed delay; `down` removes them by id.
Docker labels (`onebox.stack`, `onebox.service`) say which machine belongs to which stack."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docker.errors
from docker.models.containers import Container

from onebox.engine import Engine, Label
from onebox.engine.client import remove_quietly
from onebox.errors import InvalidInput, OperationFailed
from onebox.labs.lab import Lab
from onebox.machines import machine as machines
from onebox.templates import image as images
from onebox.templates.compose import Dependency, Project, Service

log = logging.getLogger(__name__)

Report = Callable[[str], None]
SERVICE_LABEL = "onebox.service"
URL_LABEL = "onebox.stack.url"  # set on the machine whose URL is the stack's
# How long a dependency may take to become healthy or finish: a first database start
# with its initialisation fits well inside.
DEPENDENCY_PATIENCE = 300.0
POLL_SECONDS = 0.5


@dataclass
class StackInfo:
    name: str
    machines: list[machines.Machine] = field(default_factory=list)
    url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "machines": [m.as_dict() for m in self.machines],
        }


def volume_name(lab: str, stack: str, key: str) -> str:
    return f"{lab}_{stack}_{key}"


def up(
    engine: Engine,
    lab: Lab,
    project: Project,
    report: Report,
    url_service: str | None = None,
    test: bool = False,
) -> StackInfo:
    """Makes (or starts) every service of `project` as a machine, in start order."""
    if project.ignored:
        report("Warning: not supported, ignored: " + ", ".join(project.ignored))
        log.warning(
            "Ignored compose keys in stack %s: %s", project.stack, ", ".join(project.ignored)
        )
    completion = {
        d.service
        for s in project.services.values()
        for d in s.depends_on
        if d.condition == "service_completed_successfully"
    }
    for name in project.order:
        service = project.services[name]
        existing = _container(engine, lab, project.stack, name)
        if existing is not None:
            _start_existing(existing, service, report)
            continue
        for dependency in service.depends_on:
            _wait_for(engine, lab, project, dependency, report)
        reference = images.resolve(engine, service, project.stack, report)
        request = _request(engine, lab, project, service, reference, test)
        request.labels[URL_LABEL] = "1" if name == url_service else "0"
        if name in completion:
            request.wait_running = False
            request.restart = service.restart or "no"
        report(f"Creating machine {service.machine} (service {name}, image {reference})")
        machines.create(engine, lab, request)
    return describe(engine, lab, project.stack)


def _start_existing(container: Container, service: Service, report: Report) -> None:
    if (
        container.status != "running"
        and container.attrs["State"].get("ExitCode", 0) == 0
        and container.attrs["HostConfig"]["RestartPolicy"].get("Name") == "no"
    ):
        return  # a finished one-shot job stays finished
    if container.status != "running":
        report(f"Starting machine {service.machine}")
        container.start()


def _request(
    engine: Engine, lab: Lab, project: Project, service: Service, reference: str, test: bool
) -> machines.CreateRequest:
    labels = {**service.labels, Label.STACK: project.stack, SERVICE_LABEL: service.name}
    published = {
        f"{p.target}/{p.protocol}": ("127.0.0.1", p.published) for p in service.ports if p.published
    }
    return machines.CreateRequest(
        name=service.machine,
        image=reference,
        ip=service.ip,
        command=service.command or (),
        environment=service.environment,
        web_port=service.web_port,
        labels=labels,
        test=test,
        entrypoint=service.entrypoint,
        volumes=_mounts(engine, lab, project, service, test),
        healthcheck=service.healthcheck,
        restart=service.restart or "unless-stopped",
        published=published,
        aliases=service.aliases,
        files=service.files,
        working_dir=service.working_dir,
        user=service.user,
    )


def _mounts(
    engine: Engine, lab: Lab, project: Project, service: Service, test: bool
) -> dict[str, dict[str, str]]:
    mounts = {}
    for mount in service.mounts:
        source = (
            mount.source if mount.bind else _ensure_volume(engine, lab, project, mount.source, test)
        )
        mounts[source] = {"bind": mount.target, "mode": "ro" if mount.read_only else "rw"}
    return mounts


def _ensure_volume(engine: Engine, lab: Lab, project: Project, key: str, test: bool) -> str:
    """A named volume, labelled with its lab and stack so `down` and `destroy` find it."""
    spec = project.volumes[key]
    if spec.external_name:
        return spec.external_name
    name = volume_name(lab.name, project.stack, key)
    try:
        engine.client.volumes.get(name)
    except docker.errors.NotFound:
        labels = {Label.LAB: lab.name, Label.STACK: project.stack, "onebox.volume": key}
        if test:
            labels[Label.TEST] = "1"
        engine.client.volumes.create(name, labels=labels)
    return name


def _wait_for(
    engine: Engine, lab: Lab, project: Project, dependency: Dependency, report: Report
) -> None:
    if dependency.condition == "service_started":
        return
    target = project.services[dependency.service].machine
    container = _container(engine, lab, project.stack, dependency.service)
    if container is None:
        raise OperationFailed(
            f"Machine '{target}' disappeared while the stack came up",
            f"run the command again, or `onebox stack rm {project.stack}`",
        )
    healthy = dependency.condition == "service_healthy"
    report(f"Waiting for {target} to be {'healthy' if healthy else 'finished'}")
    deadline = time.monotonic() + DEPENDENCY_PATIENCE
    while time.monotonic() < deadline:
        container.reload()
        if _reached(container, target, healthy):
            return
        time.sleep(POLL_SECONDS)
    raise OperationFailed(
        f"Machine '{target}' was not {'healthy' if healthy else 'finished'} "
        f"after {DEPENDENCY_PATIENCE:.0f} s:\n{_tail(container)}",
        f"read `onebox machine logs {target}`, fix the service and run again",
    )


def _reached(container: Container, target: str, healthy: bool) -> bool:
    state = container.attrs.get("State", {})
    if not healthy:
        if state.get("Running"):
            return False
        if state.get("ExitCode") == 0:
            return True
        raise OperationFailed(
            f"Machine '{target}' exited with code {state.get('ExitCode')}:" f"\n{_tail(container)}",
            f"read `onebox machine logs {target}`",
        )
    health = state.get("Health")
    if health is None:
        raise InvalidInput(
            f"A service waits for '{target}' to be healthy, but it has no " "healthcheck",
            "give it a `healthcheck:` or use service_started",
        )
    if health.get("Status") == "healthy":
        return True
    if health.get("Status") == "unhealthy" or not state.get("Running"):
        probes = [str(p.get("Output", "")).strip() for p in health.get("Log") or []]
        raise OperationFailed(
            f"Machine '{target}' is {health.get('Status')}; last check: "
            f"{probes[-1] if probes else 'none'}\n{_tail(container)}",
            f"read `onebox machine logs {target}`",
        )
    return False


def _tail(container: Container) -> str:
    return bytes(container.logs(tail=10)).decode(errors="replace").rstrip()


def _container(engine: Engine, lab: Lab, stack: str, service: str) -> Container | None:
    filters = {
        "label": [f"{Label.LAB}={lab.name}", f"{Label.STACK}={stack}", f"{SERVICE_LABEL}={service}"]
    }
    found = engine.client.containers.list(all=True, filters=filters)
    return found[0] if found else None


def containers(engine: Engine, lab: Lab, stack: str | None = None) -> list[Container]:
    label = f"{Label.STACK}={stack}" if stack else Label.STACK
    filters = {"label": [f"{Label.LAB}={lab.name}", label]}
    return list(engine.client.containers.list(all=True, filters=filters))


def describe(engine: Engine, lab: Lab, stack: str) -> StackInfo:
    info = StackInfo(stack)
    for container in containers(engine, lab, stack):
        machine = machines.describe(lab, container)
        info.machines.append(machine)
        if container.labels.get(URL_LABEL) == "1":
            info.url = f"http://{machine.fqdn}/"
    info.machines.sort(key=lambda m: m.name)
    return info


def list_stacks(engine: Engine, lab: Lab) -> list[StackInfo]:
    names = {c.labels[Label.STACK] for c in containers(engine, lab)}
    return [describe(engine, lab, name) for name in sorted(names)]


def down(engine: Engine, lab: Lab, stack: str, report: Report, volumes: bool = False) -> int:
    """Removes the stack's machines (and, with `volumes`, its volumes and secrets), by id;
    returns how many objects went."""
    removed = 0
    for container in containers(engine, lab, stack):
        report(f"Removing machine {container.name}")
        remove_quietly(container)
        removed += 1
    if not volumes:
        return removed
    filters = {"label": [f"{Label.LAB}={lab.name}", f"{Label.STACK}={stack}"]}
    for volume in engine.client.volumes.list(filters=filters):
        report(f"Removing volume {volume.name}")
        engine.client.api.remove_volume(volume.id, force=True)
        removed += 1
    return removed
