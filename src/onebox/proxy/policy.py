"""Who may use the forward proxies and where they may go: pure decisions, no sockets and
no DNS. A destination is allowed only when it is a lab machine, named or addressed inside
the lab subnet, and the address handed back is the only one a proxy may connect to."""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from onebox.errors import InvalidInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_MAX_PER_CLIENT = 256

# Well-known instance metadata services: AWS (v4, v6, ECS), GCP, Azure, Alibaba.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "fd00:ec2::254",
        "169.254.170.2",
        "100.100.100.200",
        "168.63.129.16",
    )
)
METADATA_NAMES = frozenset(
    (
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.azure.internal",
    )
)
# The gateway's ports that serve lab users anyway (DNS, the reverse proxy); the rest of
# its ports (SSH entry, dashboard and API, the proxies themselves) are its admin side.
GATEWAY_PUBLIC_PORTS = frozenset((53, 80, 443))
# 100.64.0.0/10 (carrier-grade NAT) is not in Python's is_private but is nobody's lab.
SHARED_SPACE = ipaddress.IPv4Network("100.64.0.0/10")


class Verdict(enum.Enum):
    ALLOW = "allow"
    REFUSE = "refuse"  # the rules forbid it: 403, SOCKS 0x02
    UNKNOWN = "unknown"  # a lab name nobody has: 502, SOCKS 0x04


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str
    address: ipaddress.IPv4Address | None = None  # set only when allowed

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW


def _is_url(relative: str, port: int, machine: MachineLike) -> bool:
    """HTTPS by name, an extra URL name, or a machine whose web server is not on port 80:
    what the reverse proxy serves and a direct connection would miss. A machine's own
    name on port 80 with its web server there goes direct, one hop shorter."""
    if port == 443:
        return True
    return port == 80 and (relative != machine.name.lower() or machine.web_port != 80)


class MachineLike(Protocol):
    """What the policy needs of a machine; the gateway's MachineView has it."""

    @property
    def name(self) -> str: ...

    @property
    def ip(self) -> ipaddress.IPv4Address: ...

    @property
    def running(self) -> bool: ...

    @property
    def urls(self) -> tuple[str, ...]: ...

    @property
    def web_port(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Machine:
    name: str
    ip: ipaddress.IPv4Address
    running: bool = True
    urls: tuple[str, ...] = ()
    web_port: int = 80


def parse_networks(text: str) -> tuple[Network, ...]:
    """`ONEBOX_ALLOW`: comma-separated CIDRs (a bare address means just that one)."""
    networks = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise InvalidInput(
                f"Allowed client network '{part}' is not a CIDR",
                "set ONEBOX_ALLOW to CIDRs like 192.168.1.0/24,10.0.0.7",
            ) from exc
    return tuple(networks)


class Policy:
    """Decisions for one lab. `set_machines` swaps the name map; decisions are cached
    until then, because the proxies ask the same question for every request."""

    def __init__(
        self,
        domain: str,
        subnet: ipaddress.IPv4Network,
        gateway_ip: ipaddress.IPv4Address,
        *,
        allow: Iterable[Network] = (),
        host_addresses: Iterable[Address] = (),
        allow_admin: bool = False,
    ) -> None:
        self.domain = domain.lower().rstrip(".")
        self.subnet = subnet
        self.gateway_ip = gateway_ip
        self.bridge_ip = subnet.network_address + 1
        # Docker's userland proxy makes loopback clients on the host arrive from the bridge.
        self.allow: tuple[Network, ...] = (
            ipaddress.IPv4Network("127.0.0.0/8"),
            ipaddress.IPv6Network("::1/128"),
            ipaddress.IPv4Network(f"{self.bridge_ip}/32"),
            *allow,
        )
        self.host_addresses = frozenset((self.bridge_ip, *host_addresses))
        self.allow_admin = allow_admin
        self.names: dict[str, MachineLike | None] = {"gateway": None}
        self.wildcards: dict[str, MachineLike] = {}
        self._destinations: dict[tuple[str, int], Decision] = {}
        self._clients: dict[str, Decision] = {}

    def set_machines(self, machines: Iterable[MachineLike]) -> None:
        names: dict[str, MachineLike | None] = {"gateway": None}
        wildcards: dict[str, MachineLike] = {}
        for machine in machines:
            names[machine.name.lower()] = machine
            for url in machine.urls:
                relative = self._relative(url.lower().rstrip("."))
                if relative.startswith("*."):
                    wildcards[relative[2:]] = machine
                else:
                    names.setdefault(relative, machine)
        self.names, self.wildcards = names, wildcards
        self._destinations = {}

    def client(self, host: str) -> Decision:
        """May a client at this address use the proxy at all?"""
        decision = self._clients.get(host)
        if decision is None:
            decision = self._client(host)
            if len(self._clients) > 10_000:
                self._clients.clear()
            self._clients[host] = decision
        return decision

    def destination(self, host: str, port: int) -> Decision:
        """May a client reach host:port? `host` is what the client sent: a name or address."""
        key = (host, port)
        decision = self._destinations.get(key)
        if decision is None:
            decision = self._destination(host, port)
            if len(self._destinations) > 10_000:
                self._destinations.clear()
            self._destinations[key] = decision
        return decision

    def _client(self, host: str) -> Decision:
        try:
            address = _unmapped(ipaddress.ip_address(host.split("%")[0]))
        except ValueError:
            return Decision(Verdict.REFUSE, f"client address {host!r} is not an IP address")
        if any(address in net for net in self.allow):
            return Decision(Verdict.ALLOW, "allowed client")
        return Decision(
            Verdict.REFUSE,
            f"client {address} is not in the allowed networks "
            "(the lab owner can add it to ONEBOX_ALLOW)",
        )

    def _destination(self, host: str, port: int) -> Decision:
        if not 0 < port < 65536:
            return Decision(Verdict.REFUSE, f"port {port} is not a TCP port")
        text = host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")
        if not text:
            return Decision(Verdict.REFUSE, "empty destination name")
        try:
            address = _unmapped(ipaddress.ip_address(text))
        except ValueError:
            return self._by_name(text, port)
        return self._by_address(address, port)

    def _by_name(self, name: str, port: int) -> Decision:
        if name in METADATA_NAMES or name.startswith("metadata."):
            return Decision(Verdict.REFUSE, f"{name} is a cloud metadata service")
        if name == "localhost" or name.endswith(".localhost"):
            return Decision(Verdict.REFUSE, f"{name} is the loopback address")
        if name == self.domain:
            return Decision(Verdict.UNKNOWN, f"{name} is the lab domain, not a machine")
        if "." in name and not name.endswith(f".{self.domain}"):
            return Decision(Verdict.REFUSE, f"{name} is outside the lab domain {self.domain}")
        relative = self._relative(name)
        if relative == "gateway":
            return self._by_address(self.gateway_ip, port)
        machine = self._lookup(relative)
        if machine is None:
            return Decision(Verdict.UNKNOWN, f"no machine named {relative}.{self.domain}")
        if not machine.running:
            return Decision(Verdict.UNKNOWN, f"machine {machine.name} is stopped")
        if _is_url(relative, port, machine):
            # The URL belongs to the gateway's reverse proxy, which knows the machine's web
            # port, its extra names and the lab's HTTPS certificates.
            return Decision(Verdict.ALLOW, "lab URL, through the reverse proxy", self.gateway_ip)
        return self._by_address(machine.ip, port)

    def _lookup(self, relative: str) -> MachineLike | None:
        found = self.names.get(relative)
        if found is not None:
            return found
        # The closest `*.parent` wins, as in the lab's DNS zone.
        parts = relative.split(".")
        for i in range(1, len(parts)):
            wild = self.wildcards.get(".".join(parts[i:]))
            if wild is not None:
                return wild
        return None

    def _by_address(self, address: Address, port: int) -> Decision:
        refusal = _refusal(address) or self._lab_refusal(address, port)
        if refusal:
            return Decision(Verdict.REFUSE, refusal)
        assert isinstance(address, ipaddress.IPv4Address) and address in self.subnet
        return Decision(Verdict.ALLOW, "lab machine", address)

    def _lab_refusal(self, address: Address, port: int) -> str | None:
        if address in self.host_addresses:
            return f"{address} is the host's own address"
        if address not in self.subnet:
            if address.is_private or address in SHARED_SPACE:
                return f"{address} is a private address outside the lab subnet {self.subnet}"
            return f"{address} is outside the lab subnet {self.subnet}"
        if address in (self.subnet.network_address, self.subnet.broadcast_address):
            return f"{address} is not a machine address in {self.subnet}"
        admin = port not in GATEWAY_PUBLIC_PORTS and not self.allow_admin
        if address == self.gateway_ip and admin:
            return f"port {port} is the gateway's own admin port"
        return None

    def _relative(self, name: str) -> str:
        return name.removesuffix(f".{self.domain}")


def _unmapped(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _refusal(address: Address) -> str | None:
    """Classes refused whatever the lab, most specific first."""
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return f"{address} is not a unicast address"
    return None


def from_environment(
    domain: str,
    subnet: ipaddress.IPv4Network,
    gateway_ip: ipaddress.IPv4Address,
    environ: Mapping[str, str],
) -> Policy:
    """The policy the gateway's settings and `ONEBOX_ALLOW` / `ONEBOX_PROXY_ADMIN` ask for."""
    return Policy(
        domain,
        subnet,
        gateway_ip,
        allow=parse_networks(environ.get("ONEBOX_ALLOW", "")),
        allow_admin=environ.get("ONEBOX_PROXY_ADMIN", "") in ("1", "yes", "true"),
    )


def max_per_client(environ: Mapping[str, str]) -> int:
    text = environ.get("ONEBOX_PROXY_MAX_PER_CLIENT", "")
    if not text:
        return DEFAULT_MAX_PER_CLIENT
    if not text.isdigit() or int(text) < 1:
        raise InvalidInput(
            f"ONEBOX_PROXY_MAX_PER_CLIENT={text!r} is not a positive number",
            "set it to a count of connections, like 256",
        )
    return int(text)
