"""The compose model: a compose file's services, read into plans that onebox can turn
into machines. It checks and normalises; it never talks to Docker. Keys onebox does not
support are collected in `Project.ignored`, never dropped in silence."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from onebox.addressing import names
from onebox.errors import InvalidInput, NotFound
from onebox.templates import interpolation

SERVICE_KEYS = {
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "expose",
    "volumes",
    "depends_on",
    "healthcheck",
    "restart",
    "networks",
    "configs",
    "working_dir",
    "user",
    "labels",
    "x-onebox-recipe",
}
TOP_KEYS = {"services", "volumes", "networks", "configs", "name", "version"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
RESTARTS = {"no", "always", "on-failure", "unless-stopped"}
_STACK = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_UNITS_NS = {"us": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


@dataclass
class Mount:
    source: str  # a declared volume's key, or an absolute host path for a bind
    target: str
    bind: bool = False
    read_only: bool = False


@dataclass
class Port:
    target: int
    published: int | None = None
    protocol: str = "tcp"


@dataclass
class Dependency:
    service: str
    condition: str = "service_started"


@dataclass
class Build:
    context: Path
    dockerfile: str = "Dockerfile"
    args: dict[str, str] = field(default_factory=dict)


@dataclass
class Service:
    name: str  # as the file writes it
    machine: str  # STACK-LABEL, a DNS label
    image: str | None = None
    build: Build | None = None
    recipe: str | None = None
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    ports: list[Port] = field(default_factory=list)
    expose: list[int] = field(default_factory=list)
    healthcheck: dict[str, Any] | None = None
    restart: str | None = None
    depends_on: list[Dependency] = field(default_factory=list)
    ip: str | None = None
    aliases: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    working_dir: str | None = None
    user: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def web_port(self) -> int:
        """The port behind the machine's URL: the first TCP port it publishes or exposes."""
        tcp = [p.target for p in self.ports if p.protocol == "tcp"]
        return (tcp + self.expose + [80])[0]


@dataclass
class Volume:
    key: str
    external_name: str | None = None  # set when the file says `external: true`


@dataclass
class Project:
    stack: str
    base_dir: Path
    services: dict[str, Service]
    volumes: dict[str, Volume]
    order: list[str]  # services, each after everything it depends on
    ignored: list[str] = field(default_factory=list)

    def mapping(self) -> list[tuple[str, str]]:
        """Service name -> machine name, in start order."""
        return [(name, self.services[name].machine) for name in self.order]


def check_stack_name(stack: str) -> str:
    if not _STACK.match(stack):
        raise InvalidInput(
            f"Stack name '{stack}' is not allowed",
            "use 1-32 lower-case letters, digits and inner hyphens, like blog",
        )
    return stack


def dns_label(service: str) -> str:
    """A service name as a DNS label: lower case, runs of anything else as one hyphen."""
    label = re.sub(r"[^a-z0-9]+", "-", service.lower()).strip("-")
    if not label:
        raise InvalidInput(
            f"Service name '{service}' has no letters or digits",
            "rename the service in the compose file",
        )
    return label


def machine_name(stack: str, service: str) -> str:
    candidate = f"{stack}-{dns_label(service)}"
    if len(candidate) > 63:
        raise InvalidInput(
            f"Machine name '{candidate}' for service '{service}' is longer "
            "than a DNS label (63)",
            "use a shorter stack or service name",
        )
    return names.check_machine_name(candidate)


def read_file(path: Path) -> dict[str, Any]:
    """A compose file, parsed; the caller substitutes variables."""
    if not path.is_file():
        raise NotFound(f"Compose file '{path}' does not exist", "give its path with -f FILE")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInput(
            f"Compose file '{path}' is not valid YAML: {exc}", "fix the line it names"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise InvalidInput(
            f"Compose file '{path}' has no `services:` mapping",
            "a compose file lists its machines under `services:`",
        )
    return data


def load(path: Path, stack: str, variables: dict[str, str]) -> Project:
    """Reads a compose file, substitutes `variables` (and the file's `.env`), and plans."""
    env_path = path.parent / ".env"
    merged = {**interpolation.read_env_file(env_path, required=False), **variables}
    data = interpolation.substitute_tree(read_file(path), merged)
    return plan(data, stack, path.parent.resolve(), merged)


def plan(data: dict[str, Any], stack: str, base_dir: Path, variables: dict[str, str]) -> Project:
    stack = check_stack_name(stack)
    ignored = [key for key in data if key not in TOP_KEYS and not str(key).startswith("x-")]
    volumes = _volumes(data.get("volumes") or {})
    configs = data.get("configs") or {}
    ignored += _network_keys(data.get("networks") or {})
    services: dict[str, Service] = {}
    taken: dict[str, str] = {}
    for name, spec in data["services"].items():
        service = _service(str(name), spec or {}, stack, base_dir, variables, configs)
        if service.machine in taken:
            raise InvalidInput(
                f"Services '{taken[service.machine]}' and '{name}' both map "
                f"to machine '{service.machine}'",
                "rename one of them",
            )
        taken[service.machine] = str(name)
        _check_mounts(service, volumes)
        ignored += [
            f"{name}.{key}"
            for key in spec or {}
            if key not in SERVICE_KEYS and not str(key).startswith("x-")
        ]
        services[str(name)] = service
    order = start_order(services)
    return Project(stack, base_dir, services, volumes, order, ignored)


def _volumes(spec: dict[str, Any]) -> dict[str, Volume]:
    found = {}
    for key, value in spec.items():
        value = value or {}
        external = value.get("external")
        name = value.get("name", key) if external else None
        found[str(key)] = Volume(str(key), name)
    return found


def _network_keys(spec: dict[str, Any]) -> list[str]:
    """Every service joins the one lab network, so a network's own settings are not used."""
    return [
        f"networks.{name}.{key}"
        for name, value in spec.items()
        for key in (value or {})
        if key not in ("external", "name")
    ]


def _service(
    name: str,
    spec: dict[str, Any],
    stack: str,
    base_dir: Path,
    variables: dict[str, str],
    configs: dict[str, Any],
) -> Service:
    where = f"service '{name}'"
    if not isinstance(spec, dict):
        raise InvalidInput(f"{where} is not a mapping", "give the service its keys")
    service = Service(
        name=name,
        machine=machine_name(stack, name),
        image=spec.get("image"),
        recipe=spec.get("x-onebox-recipe"),
    )
    if "build" in spec:
        service.build = _build(spec["build"], base_dir)
    if not (service.image or service.build or service.recipe):
        raise InvalidInput(
            f"{where} has neither `image` nor `build`",
            "give it an image (like `image: nginx:1`) or a build context",
        )
    service.command = _argv(spec.get("command"), where)
    service.entrypoint = _argv(spec.get("entrypoint"), where)
    service.environment = _environment(spec, base_dir, variables, where)
    service.mounts = [_mount(item, base_dir, where) for item in spec.get("volumes") or []]
    service.ports = [port for item in spec.get("ports") or [] for port in _ports(item, where)]
    service.expose = [int(str(item).split("/")[0]) for item in spec.get("expose") or []]
    service.healthcheck = _healthcheck(spec.get("healthcheck"), where)
    service.restart = _restart(spec.get("restart"), where)
    service.depends_on = _depends_on(spec.get("depends_on"), where)
    service.ip, service.aliases = _networks(spec.get("networks"), name)
    service.files = _configs(spec.get("configs") or [], configs, base_dir, where)
    service.working_dir = spec.get("working_dir")
    service.user = str(spec["user"]) if spec.get("user") is not None else None
    service.labels = _string_map(spec.get("labels"), where)
    return service


def _build(spec: Any, base_dir: Path) -> Build:
    if isinstance(spec, str):
        return Build(_host_path(spec, base_dir))
    return Build(
        _host_path(spec.get("context", "."), base_dir),
        spec.get("dockerfile", "Dockerfile"),
        _string_map(spec.get("args"), "build"),
    )


def _argv(value: Any, where: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return shlex.split(value)
    if isinstance(value, list):
        return [str(item) for item in value]
    raise InvalidInput(
        f"{where}: command/entrypoint must be a string or a list",
        'write it like `command: ["nginx", "-g", "daemon off;"]`',
    )


def _string_map(value: Any, where: str) -> dict[str, str]:
    """A mapping or a KEY=VALUE list, as compose allows for labels, args and environment."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): "" if v is None else _scalar(v) for k, v in value.items()}
    if isinstance(value, list):
        return dict(str(item).partition("=")[::2] for item in value)
    raise InvalidInput(
        f"{where}: expected a mapping or a list of KEY=VALUE",
        "write `KEY: value` lines or `- KEY=value` items",
    )


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _environment(
    spec: dict[str, Any], base_dir: Path, variables: dict[str, str], where: str
) -> dict[str, str]:
    env: dict[str, str] = {}
    files = spec.get("env_file") or []
    for item in [files] if isinstance(files, str) else files:
        path, required = (
            (item, True) if isinstance(item, str) else (item["path"], item.get("required", True))
        )
        env.update(interpolation.read_env_file(_host_path(path, base_dir), required))
    raw = spec.get("environment")
    if isinstance(raw, list):
        for item in raw:
            key, sep, value = str(item).partition("=")
            if sep:
                env[key] = value
            elif key in variables:  # `- KEY` alone takes the value from the caller
                env[key] = variables[key]
    else:
        for key, value in (raw or {}).items():
            if value is not None:
                env[str(key)] = _scalar(value)
            elif key in variables:
                env[str(key)] = variables[key]
    return env


def _host_path(text: str, base_dir: Path) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def _mount(item: Any, base_dir: Path, where: str) -> Mount:
    if isinstance(item, dict):
        kind = item.get("type", "volume")
        if kind not in ("volume", "bind"):
            raise InvalidInput(
                f"{where}: volume type '{kind}' is not supported",
                "use a named volume or a bind mount",
            )
        source, target = str(item.get("source", "")), str(item.get("target", ""))
        read_only = bool(item.get("read_only"))
    else:
        parts = str(item).split(":")
        if len(parts) == 1:
            raise InvalidInput(
                f"{where}: anonymous volume '{item}' is not supported",
                "name it: `data:/path`, and list `data:` under top-level " "`volumes:`",
            )
        source, target = parts[0], parts[1]
        read_only = len(parts) > 2 and "ro" in parts[2].split(",")
    if not source or not target.startswith("/"):
        raise InvalidInput(
            f"{where}: volume '{item}' needs a source and an absolute target",
            "write it like `data:/var/lib/data` or `./site:/srv/site:ro`",
        )
    bind = source.startswith((".", "/", "~"))
    return Mount(str(_host_path(source, base_dir)) if bind else source, target, bind, read_only)


def _check_mounts(service: Service, volumes: dict[str, Volume]) -> None:
    for mount in service.mounts:
        if not mount.bind and mount.source not in volumes:
            raise InvalidInput(
                f"Service '{service.name}' uses volume '{mount.source}', "
                "which the file does not declare",
                f"add `{mount.source}:` under the top-level `volumes:`",
            )


def _ports(item: Any, where: str) -> list[Port]:
    if isinstance(item, dict):
        published = item.get("published")
        return [
            Port(
                int(item["target"]),
                int(published) if published else None,
                item.get("protocol", "tcp"),
            )
        ]
    text, _, protocol = str(item).partition("/")
    parts = text.split(":")
    target = parts[-1]
    published = parts[-2] if len(parts) > 1 else ""
    try:
        if "-" in target:
            first, last = (int(x) for x in target.split("-"))
            starts = [int(x) for x in published.split("-")][:1] if published else []
            return [
                Port(first + i, starts[0] + i if starts else None, protocol or "tcp")
                for i in range(last - first + 1)
            ]
        return [Port(int(target), int(published) if published else None, protocol or "tcp")]
    except ValueError as exc:
        raise InvalidInput(
            f"{where}: port '{item}' is not understood",
            "write it like `8080:80`, `80` or `8080:80/udp`",
        ) from exc


def duration_ns(text: Any, where: str) -> int:
    if isinstance(text, int | float):
        return int(text * 10**9)
    parts = _DURATION.findall(str(text))
    if not parts or "".join(n + u for n, u in parts) != str(text).replace(" ", ""):
        raise InvalidInput(
            f"{where}: duration '{text}' is not understood", "write it like 10s, 1m30s or 500ms"
        )
    return int(sum(float(number) * _UNITS_NS[unit] for number, unit in parts))


def _healthcheck(spec: Any, where: str) -> dict[str, Any] | None:
    if spec is None:
        return None
    if spec.get("disable"):
        return {"test": ["NONE"]}
    test = spec.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    if not isinstance(test, list) or not test or test[0] not in ("CMD", "CMD-SHELL", "NONE"):
        raise InvalidInput(
            f"{where}: healthcheck test must start with CMD, CMD-SHELL or NONE",
            'write it like `test: ["CMD", "pg_isready"]`',
        )
    check: dict[str, Any] = {"test": [str(x) for x in test]}
    for key in ("interval", "timeout", "start_period", "start_interval"):
        if key in spec:
            check[key] = duration_ns(spec[key], f"{where} healthcheck.{key}")
    if "retries" in spec:
        check["retries"] = int(spec["retries"])
    return check


def _restart(value: Any, where: str) -> str | None:
    if value is None:
        return None
    text = "no" if value is False else str(value)
    if text.split(":")[0] not in RESTARTS:
        raise InvalidInput(
            f"{where}: restart '{text}' is not a restart policy",
            "use no, always, on-failure[:N] or unless-stopped",
        )
    return text


def _depends_on(value: Any, where: str) -> list[Dependency]:
    if value is None:
        return []
    if isinstance(value, list):
        return [Dependency(str(name)) for name in value]
    found = []
    for name, spec in value.items():
        condition = (spec or {}).get("condition", "service_started")
        if condition not in CONDITIONS:
            raise InvalidInput(
                f"{where}: depends_on condition '{condition}' is unknown",
                f"use one of {', '.join(sorted(CONDITIONS))}",
            )
        found.append(Dependency(str(name), condition))
    return found


def _networks(value: Any, service: str) -> tuple[str | None, list[str]]:
    """The fixed address and aliases; every network a service names is the lab network.
    The service's own name is an alias too, as compose makes it (shared by every stack
    on the lab network, so templates use the machine's own name instead)."""
    aliases = list(dict.fromkeys([service, dns_label(service)]))
    address = None
    if isinstance(value, dict):
        for spec in value.values():
            spec = spec or {}
            address = address or spec.get("ipv4_address")
            aliases += [str(a) for a in spec.get("aliases") or []]
    return address, aliases


def _configs(
    items: list[Any], declared: dict[str, Any], base_dir: Path, where: str
) -> dict[str, bytes]:
    files = {}
    for item in items:
        source = item if isinstance(item, str) else item.get("source", "")
        target = f"/{source}" if isinstance(item, str) else item.get("target", f"/{source}")
        spec = declared.get(source)
        if not isinstance(spec, dict):
            raise InvalidInput(
                f"{where} uses config '{source}', which the file does not " "declare",
                f"add `{source}:` with `file:` or `content:` under " "the top-level `configs:`",
            )
        if "content" in spec:
            files[target] = str(spec["content"]).encode()
        else:
            files[target] = _host_path(spec["file"], base_dir).read_bytes()
    return files


def start_order(services: dict[str, Service]) -> list[str]:
    """Services ordered so each comes after what it depends on; the file's order breaks
    ties. A cycle is refused with the services that form it."""
    for service in services.values():
        for dep in service.depends_on:
            if dep.service not in services:
                raise InvalidInput(
                    f"Service '{service.name}' depends on '{dep.service}', "
                    "which the file does not define",
                    "fix the name under depends_on",
                )
    order: list[str] = []
    waiting = list(services)
    while waiting:
        ready = [
            name
            for name in waiting
            if all(dep.service in order for dep in services[name].depends_on)
        ]
        if not ready:
            raise InvalidInput(
                f"depends_on forms a cycle among: {', '.join(waiting)}",
                "remove one of the dependencies",
            )
        order.append(ready[0])
        waiting.remove(ready[0])
    return order
