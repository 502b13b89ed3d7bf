from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import pytest

from onebox.dns.zone import Zone
from onebox.errors import InvalidInput

ZONE = Zone(
    domain="onebox.internal",
    subnets=(
        IPv4Network("10.80.0.0/24"),
        IPv4Network("10.90.0.0/20"),
        IPv4Network("10.70.5.16/28"),
    ),
    gateway_ip=IPv4Address("10.80.0.2"),
    hosts={
        "web1": IPv4Address("10.80.0.10"),
        "db": IPv4Address("10.90.3.4"),
        "cache": IPv4Address("10.70.5.18"),
    },
    extra={
        "shop": IPv4Address("10.80.0.20"),
        "*.shop": IPv4Address("10.80.0.21"),
        "api.shop": IPv4Address("10.80.0.22"),
        "www": IPv4Address("10.80.0.10"),
        "*.apps.team": IPv4Address("10.80.0.30"),
    },
    ttl=5,
    serial=7,
)
SOA = "gateway.onebox.internal. hostmaster.onebox.internal. 7 3600 600 86400 5"


def ask(name: str, rdtype: str = "A", *, edns: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, use_edns=0 if edns else False)
    reply = ZONE.answer(query)
    assert reply is not None, f"{name} {rdtype} should be ours"
    assert reply.id == query.id
    return reply


def records(reply: dns.message.Message, section: str = "answer") -> list[str]:
    return sorted(
        f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} {rdata}"
        for rrset in getattr(reply, section)
        for rdata in rrset
    )


@pytest.mark.parametrize(
    ("name", "rdtype", "expected"),
    [
        ("web1.onebox.internal", "A", "web1.onebox.internal. A 10.80.0.10"),
        ("gateway.onebox.internal", "A", "gateway.onebox.internal. A 10.80.0.2"),
        ("onebox.internal", "A", "onebox.internal. A 10.80.0.2"),
        ("onebox.internal", "NS", "onebox.internal. NS gateway.onebox.internal."),
        ("onebox.internal", "SOA", f"onebox.internal. SOA {SOA}"),
        ("shop.onebox.internal", "A", "shop.onebox.internal. A 10.80.0.20"),
        ("api.shop.onebox.internal", "A", "api.shop.onebox.internal. A 10.80.0.22"),
        ("a.shop.onebox.internal", "A", "a.shop.onebox.internal. A 10.80.0.21"),
        ("x.y.shop.onebox.internal", "A", "x.y.shop.onebox.internal. A 10.80.0.21"),
        ("www.onebox.internal", "A", "www.onebox.internal. A 10.80.0.10"),
        ("10.0.80.10.in-addr.arpa", "PTR", "10.0.80.10.in-addr.arpa. PTR web1.onebox.internal."),
        ("2.0.80.10.in-addr.arpa", "PTR", "2.0.80.10.in-addr.arpa. PTR gateway.onebox.internal."),
        ("20.0.80.10.in-addr.arpa", "PTR", "20.0.80.10.in-addr.arpa. PTR shop.onebox.internal."),
        ("4.3.90.10.in-addr.arpa", "PTR", "4.3.90.10.in-addr.arpa. PTR db.onebox.internal."),
        ("18.5.70.10.in-addr.arpa", "PTR", "18.5.70.10.in-addr.arpa. PTR cache.onebox.internal."),
    ],
)
def test_names_of_the_lab_get_one_authoritative_record(
    name: str, rdtype: str, expected: str
) -> None:
    reply = ask(name, rdtype)

    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    assert records(reply) == [expected]
    assert all(rrset.ttl == 5 for rrset in reply.answer)


def test_names_match_whatever_their_case_and_keep_the_question_as_asked() -> None:
    reply = ask("WEB1.OneBox.Internal")

    assert str(reply.question[0].name) == "WEB1.OneBox.Internal."
    assert [str(rdata) for rdata in reply.answer[0]] == ["10.80.0.10"]


def test_apex_ns_carries_the_gateway_address_as_glue() -> None:
    reply = ask("onebox.internal", "NS")

    assert records(reply, "additional") == ["gateway.onebox.internal. A 10.80.0.2"]


@pytest.mark.parametrize(
    ("name", "rdtype"),
    [
        ("web1.onebox.internal", "AAAA"),
        ("web1.onebox.internal", "MX"),
        ("web1.onebox.internal", "TXT"),
        ("onebox.internal", "AAAA"),
        ("a.shop.onebox.internal", "AAAA"),
        # Names with nothing of their own but names below them exist (RFC 8020).
        ("team.onebox.internal", "A"),
        ("apps.team.onebox.internal", "A"),
        ("3.90.10.in-addr.arpa", "PTR"),
        ("10.0.80.10.in-addr.arpa", "A"),
    ],
)
def test_known_name_of_another_type_is_nodata_with_the_soa(name: str, rdtype: str) -> None:
    reply = ask(name, rdtype)

    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    assert reply.answer == []
    assert [rrset.rdtype for rrset in reply.authority] == [dns.rdatatype.SOA]


@pytest.mark.parametrize(
    ("name", "rdtype", "soa_owner"),
    [
        ("nope.onebox.internal", "A", "onebox.internal."),
        ("nope.onebox.internal", "AAAA", "onebox.internal."),
        ("a.web1.onebox.internal", "A", "onebox.internal."),
        ("99.0.80.10.in-addr.arpa", "PTR", "0.80.10.in-addr.arpa."),
        ("21.0.80.10.in-addr.arpa", "PTR", "0.80.10.in-addr.arpa."),  # only a wildcard's
        ("200.15.90.10.in-addr.arpa", "PTR", "15.90.10.in-addr.arpa."),
        ("20.5.70.10.in-addr.arpa", "PTR", "5.70.10.in-addr.arpa."),
    ],
)
def test_unknown_name_in_our_zones_is_nxdomain_with_the_soa(
    name: str, rdtype: str, soa_owner: str
) -> None:
    reply = ask(name, rdtype)

    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.flags & dns.flags.AA
    assert reply.answer == []
    assert records(reply, "authority") == [f"{soa_owner} SOA {SOA}"]
    assert reply.authority[0].ttl == 5


def test_reverse_zone_apex_answers_soa_and_ns() -> None:
    assert records(ask("0.80.10.in-addr.arpa", "SOA")) == [f"0.80.10.in-addr.arpa. SOA {SOA}"]
    assert records(ask("5.70.10.in-addr.arpa", "NS")) == [
        "5.70.10.in-addr.arpa. NS gateway.onebox.internal."
    ]


@pytest.mark.parametrize(
    ("name", "rdtype"),
    [
        ("example.com", "A"),
        ("onebox.internal.example.com", "A"),
        ("internal", "SOA"),
        ("80.10.in-addr.arpa", "PTR"),  # the /24's parent is not ours
        ("1.16.90.10.in-addr.arpa", "PTR"),  # just past the /20
        ("3.5.70.10.in-addr.arpa", "PTR"),  # in the /28's /24 but outside the /28
        ("1.0.0.127.in-addr.arpa", "PTR"),
    ],
)
def test_names_outside_our_zones_are_left_to_forward(name: str, rdtype: str) -> None:
    assert ZONE.answer(dns.message.make_query(name, rdtype)) is None


def test_other_classes_are_left_to_forward() -> None:
    query = dns.message.make_query("web1.onebox.internal", "TXT", rdclass=dns.rdataclass.CH)

    assert ZONE.answer(query) is None


def test_any_answers_every_record_the_name_has() -> None:
    assert records(ask("onebox.internal", "ANY")) == [
        "onebox.internal. A 10.80.0.2",
        "onebox.internal. NS gateway.onebox.internal.",
        f"onebox.internal. SOA {SOA}",
    ]
    assert records(ask("web1.onebox.internal", "ANY")) == ["web1.onebox.internal. A 10.80.0.10"]


def test_zone_transfers_are_refused() -> None:
    assert ask("onebox.internal", "AXFR").rcode() == dns.rcode.REFUSED


@pytest.mark.parametrize("edns", [True, False])
def test_reply_has_opt_exactly_when_the_query_had_it(edns: bool) -> None:
    for name in ("web1.onebox.internal", "nope.onebox.internal"):
        assert (ask(name, edns=edns).edns >= 0) is edns


def test_ptr_prefers_the_machine_then_the_gateway_then_extra_names() -> None:
    zone = Zone(
        "lab.internal",
        (IPv4Network("10.80.1.0/24"),),
        IPv4Address("10.80.1.2"),
        hosts={"web": IPv4Address("10.80.1.10")},
        extra={"a": IPv4Address("10.80.1.10"), "dash": IPv4Address("10.80.1.2")},
    )

    for address, target in [("10", "web.lab.internal."), ("2", "gateway.lab.internal.")]:
        reply = zone.answer(dns.message.make_query(f"{address}.1.80.10.in-addr.arpa", "PTR"))
        assert reply is not None
        assert [str(rdata) for rdata in reply.answer[0]] == [target]


def test_domain_is_matched_whatever_case_it_was_given_in() -> None:
    zone = Zone("Lab.Internal.", (IPv4Network("10.80.1.0/24"),), IPv4Address("10.80.1.2"), {})

    reply = zone.answer(dns.message.make_query("gateway.lab.internal", "A"))
    assert reply is not None and [str(r) for r in reply.answer[0]] == ["10.80.1.2"]


@pytest.mark.parametrize("name", ["", "a.*.b", "a..b", "x" * 64])
def test_record_names_that_are_not_dns_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="Record name"):
        Zone("lab.internal", (), IPv4Address("10.80.1.2"), {}, {name: IPv4Address("10.80.1.9")})
