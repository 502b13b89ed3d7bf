"""A lab's DNS data: its domain and the reverse zones of its subnets, answered from memory.
It only turns a query into a reply; it knows nothing of sockets, caches or Docker.

Reverse zones are whole octets of in-addr.arpa. A subnet whose prefix is not a multiple of
eight is split into the next longer octet-aligned networks (a /20 gives sixteen /24 zones),
so the lab claims exactly its own addresses. A subnet longer than /24 (a /28) lives in the
/24 zone that holds it; names in that zone outside the lab's subnets are not claimed and go
upstream, since other labs or networks may own them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from onebox.errors import InvalidInput

log = logging.getLogger(__name__)

IN = dns.rdataclass.IN
A = dns.rdatatype.A
NS = dns.rdatatype.NS
SOA = dns.rdatatype.SOA
PTR = dns.rdatatype.PTR
ANY = dns.rdatatype.ANY
TRANSFERS = {dns.rdatatype.AXFR, dns.rdatatype.IXFR}
IN_ADDR_ARPA = dns.name.from_text("in-addr.arpa.")
# The payload size DNS Flag Day 2020 settled on: no IP fragmentation on common paths.
EDNS_PAYLOAD = 1232

# Records of one owner name: type -> rdatas. An owner name with none does not exist.
Node = dict[dns.rdatatype.RdataType, list[dns.rdata.Rdata]]


@dataclass(frozen=True)
class Zone:
    """One lab's names: machines (`hosts`, one label each), the gateway at `gateway.DOMAIN`
    and the apex, and `extra` names relative to the domain, where `*.shop` stands for every
    name below shop that has no record of its own. ANY is answered with all a name has:
    the records are few and the server is never open to the internet, so the reflection
    risk that led RFC 8482 to minimal ANY answers does not apply."""

    domain: str
    subnets: tuple[IPv4Network, ...]
    gateway_ip: IPv4Address
    hosts: Mapping[str, IPv4Address]
    extra: Mapping[str, IPv4Address] = field(default_factory=dict)
    ttl: int = 5
    serial: int = 1
    _index: _Index = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", _Index(self))

    def answer(self, query: dns.message.Message) -> dns.message.Message | None:
        """The authoritative reply to `query`, or None when the name is not ours to answer."""
        if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
            return None
        question = query.question[0]
        if question.rdclass != IN:
            return None
        return self._index.answer(query, question.name, question.rdtype)


class _Index:
    """Owner names to records, built once per zone so that a query is a few dict lookups."""

    def __init__(self, zone: Zone) -> None:
        self.ttl = zone.ttl
        self.origin = _absolute(zone.domain)
        self.gateway = _child("gateway", self.origin)
        self.nodes: dict[dns.name.Name, Node] = {}
        self.wildcards: dict[dns.name.Name, IPv4Address] = {}
        self.reverse = _reverse_zones(zone.subnets)
        self._add_forward(zone)
        self._add_reverse(zone)
        self.nonterminals = _nonterminals(self.nodes, self.wildcards)
        log.debug(
            "Indexed zone %s: %d names, %d reverse zones",
            zone.domain,
            len(self.nodes),
            len(self.reverse),
        )

    def _add_forward(self, zone: Zone) -> None:
        for text, address in sorted(zone.extra.items()):
            name = _child(text, self.origin)
            if name.is_wild():
                self.wildcards[name.parent()] = address
            else:
                self.nodes[name] = {A: [_a(address)]}
        for text, address in sorted(zone.hosts.items()):
            self.nodes[_child(text, self.origin)] = {A: [_a(address)]}
        self.nodes[self.gateway] = {A: [_a(zone.gateway_ip)]}
        self._add_apex(self.origin, zone.serial)
        self.nodes[self.origin][A] = [_a(zone.gateway_ip)]

    def _add_reverse(self, zone: Zone) -> None:
        for origin in self.reverse:
            self._add_apex(origin, zone.serial)
        for address, target in _ptr_targets(zone, self.origin).items():
            self.nodes[_reverse_name(address)] = {PTR: [_ptr(target)]}

    def _add_apex(self, origin: dns.name.Name, serial: int) -> None:
        hostmaster = _child("hostmaster", self.origin)
        # Refresh, retry and expire matter only to secondaries, which a lab does not have.
        soa = f"{self.gateway} {hostmaster} {serial} 3600 600 86400 {self.ttl}"
        self.nodes[origin] = {
            SOA: [dns.rdata.from_text(IN, SOA, soa)],
            NS: [dns.rdata.from_text(IN, NS, str(self.gateway))],
        }

    def zone_of(self, name: dns.name.Name) -> dns.name.Name | None:
        if name.is_subdomain(self.origin):
            return self.origin
        if not name.is_subdomain(IN_ADDR_ARPA):
            return None
        while name != IN_ADDR_ARPA:
            if name in self.reverse:
                return name
            name = name.parent()
        return None

    def answer(
        self, query: dns.message.Message, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> dns.message.Message | None:
        origin = self.zone_of(name)
        if origin is None or not self._claims(origin, name):
            return None
        response = dns.message.make_response(query, our_payload=EDNS_PAYLOAD)
        if rdtype in TRANSFERS:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        response.flags |= dns.flags.AA

        node = self._find(name)
        if node is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            node = {}
        kinds = [kind for kind in node if rdtype in (kind, ANY)]
        for kind in kinds:
            response.answer.append(dns.rrset.from_rdata_list(name, self.ttl, node[kind]))
        if not kinds:
            response.authority.append(self._rrset(origin, SOA))
        if NS in kinds:
            response.additional.append(self._rrset(self.gateway, A))
        return response

    def _find(self, name: dns.name.Name) -> Node | None:
        """The records of `name`; an empty node for a name that exists only as a parent."""
        node = self.nodes.get(name)
        if node is not None:
            return node
        if name in self.nonterminals:
            return {}
        # The closest `*.parent` wins, at any depth below it: a friendlier rule than RFC
        # 4592's, which would let an existing name in between hide the wildcard.
        parent = name
        while parent != self.origin and parent.is_subdomain(self.origin):
            parent = parent.parent()
            if parent in self.wildcards:
                return {A: [_a(self.wildcards[parent])]}
        return None

    def _claims(self, origin: dns.name.Name, name: dns.name.Name) -> bool:
        if origin == self.origin or name == origin:
            return True
        address = _address_of(name)
        if address is None:
            return True
        return any(address in subnet for subnet in self.reverse[origin])

    def _rrset(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> dns.rrset.RRset:
        return dns.rrset.from_rdata_list(name, self.ttl, self.nodes[name][rdtype])


def _absolute(domain: str) -> dns.name.Name:
    try:
        return dns.name.from_text(domain.lower().rstrip(".") + ".")
    except dns.exception.DNSException as exc:
        raise InvalidInput(
            f"Domain '{domain}' is not a valid DNS name", "give a domain like onebox.internal"
        ) from exc


def _child(text: str, origin: dns.name.Name) -> dns.name.Name:
    """`text` (relative, like "shop" or "*.shop") under `origin`, checked."""
    try:
        relative = dns.name.from_text(text.lower().rstrip("."), origin=None)
    except dns.exception.DNSException as exc:
        raise InvalidInput(
            f"Record name '{text}' is not a valid DNS name",
            "give a name relative to the lab domain, like shop or *.shop",
        ) from exc
    if not relative.labels or b"*" in relative.labels[1:]:
        raise InvalidInput(
            f"Record name '{text}' is not allowed",
            "give a non-empty name with '*' only as its first label",
        )
    return relative.concatenate(origin)


def _reverse_zones(subnets: Iterable[IPv4Network]) -> dict[dns.name.Name, list[IPv4Network]]:
    """Reverse zone origin -> the lab subnets (or parts of them) it holds."""
    zones: dict[dns.name.Name, list[IPv4Network]] = {}
    for subnet in subnets:
        if subnet.prefixlen > 24:
            parts = [subnet]
            covering = [subnet.supernet(new_prefix=24)]
        else:
            boundary = -(-subnet.prefixlen // 8) * 8
            parts = covering = list(subnet.subnets(new_prefix=boundary))
        for part, zone in zip(parts, covering, strict=True):
            zones.setdefault(_reverse_origin(zone), []).append(part)
    return zones


def _reverse_origin(network: IPv4Network) -> dns.name.Name:
    octets = str(network.network_address).split(".")[: network.prefixlen // 8]
    return dns.name.from_text(".".join(reversed(octets)), origin=IN_ADDR_ARPA)


def _reverse_name(address: IPv4Address) -> dns.name.Name:
    return dns.name.from_text(".".join(reversed(str(address).split("."))), origin=IN_ADDR_ARPA)


def _address_of(name: dns.name.Name) -> IPv4Address | None:
    """The address a full four-octet reverse name stands for, else None."""
    labels = name.relativize(IN_ADDR_ARPA).labels
    if len(labels) != 4 or not all(label.isdigit() and len(label) <= 3 for label in labels):
        return None
    octets = [int(label) for label in reversed(labels)]
    if max(octets) > 255:
        return None
    return IPv4Address(bytes(octets))


def _ptr_targets(zone: Zone, origin: dns.name.Name) -> dict[IPv4Address, dns.name.Name]:
    """One name per address: a machine's name first, then the gateway's, then extra names."""
    targets: dict[IPv4Address, dns.name.Name] = {}
    named = [*sorted(zone.hosts.items()), ("gateway", zone.gateway_ip)]
    named += sorted(zone.extra.items(), key=lambda item: (item[0].count("."), item[0]))
    for text, address in named:
        if not text.startswith("*") and any(address in net for net in zone.subnets):
            targets.setdefault(address, _child(text, origin))
    return targets


def _nonterminals(
    nodes: Mapping[dns.name.Name, Node], wildcard_parents: Iterable[dns.name.Name]
) -> set[dns.name.Name]:
    """Names that own no records but have names below them (RFC 8020: they exist)."""
    found: set[dns.name.Name] = set()
    starts = [name.parent() for name in nodes if len(name) > 1] + list(wildcard_parents)
    for name in starts:
        # Each owner climbs to the first name with records; that one climbs on its own.
        while len(name) > 1 and name not in nodes and name not in found:
            found.add(name)
            name = name.parent()
    return found


def _a(address: IPv4Address) -> dns.rdata.Rdata:
    return dns.rdata.from_text(IN, A, str(address))


def _ptr(target: dns.name.Name) -> dns.rdata.Rdata:
    return dns.rdata.from_text(IN, PTR, str(target))
