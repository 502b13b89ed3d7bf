"""Scenario 3: the gateway's DNS is authoritative for the lab, answers reverse lookups,
NODATA and NXDOMAIN correctly, forwards the rest to its upstream, and follows Docker
events live."""

from __future__ import annotations

import dns.rcode
import dns.rdatatype
import dns.reversename
import pytest

from tests.conftest import LabHandle
from tests.e2e.dnsclient import addresses, ask, wait_for

BASE = "onebox/base:bookworm"


@pytest.fixture(scope="module")
def web(lab: LabHandle) -> dict:
    return lab.cli("machine", "create", "web", "--image", BASE, "--json").json()


def test_reverse_lookup_gives_the_name_back(lab: LabHandle, web: dict) -> None:
    reply = ask(dns.reversename.from_address(web["ip"]).to_text(), lab.dns_port, "PTR")
    names = [r.target.to_text() for rrset in reply.answer for r in rrset]
    assert names == [f"web.{lab.domain}."]


def test_aaaa_for_a_name_with_only_a_is_nodata(lab: LabHandle, web: dict) -> None:
    reply = ask(f"web.{lab.domain}", lab.dns_port, "AAAA")
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []
    assert [r.rdtype for r in reply.authority] == [dns.rdatatype.SOA]


def test_unknown_name_is_nxdomain_with_the_soa(lab: LabHandle) -> None:
    reply = ask(f"nobody.{lab.domain}", lab.dns_port)
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert [r.rdtype for r in reply.authority] == [dns.rdatatype.SOA]


def test_outside_names_are_forwarded_to_the_upstream(lab: LabHandle) -> None:
    reply = ask("www.example.test", lab.dns_port)
    assert reply.rcode() == dns.rcode.NOERROR
    assert addresses(reply) == [lab.upstream.address]


def test_records_follow_create_rename_and_remove(lab: LabHandle) -> None:
    made = lab.cli("machine", "create", "mover", "--image", BASE, "--json").json()
    assert wait_for(f"mover.{lab.domain}", lab.dns_port, [made["ip"]]) == [made["ip"]]
    lab.cli("machine", "rename", "mover", "moved")
    assert wait_for(f"moved.{lab.domain}", lab.dns_port, [made["ip"]]) == [made["ip"]]
    assert wait_for(f"mover.{lab.domain}", lab.dns_port, []) == []
    lab.cli("machine", "rm", "moved")
    assert wait_for(f"moved.{lab.domain}", lab.dns_port, []) == []


def test_a_docker_rename_is_followed_too(lab: LabHandle, engine, web: dict) -> None:
    made = lab.cli("machine", "create", "dockname", "--image", BASE, "--json").json()
    engine.client.containers.get(made["id"]).rename(f"{lab.name}_dockname2")
    assert wait_for(f"dockname2.{lab.domain}", lab.dns_port, [made["ip"]]) == [made["ip"]]
    lab.cli("machine", "rm", "dockname2")


def test_machines_resolve_outside_names_through_the_gateway(lab: LabHandle, web: dict) -> None:
    out = lab.cli("machine", "exec", "web", "--", "getent", "hosts", "www.example.test").stdout
    assert out.split()[0] == lab.upstream.address


def test_a_rename_moves_the_bare_name_inside_the_lab(lab: LabHandle, web: dict) -> None:
    made = lab.cli("machine", "create", "before", "--image", BASE, "--json").json()
    lab.cli("machine", "rename", "before", "after")
    found = lab.cli("machine", "exec", "web", "--", "getent", "hosts", "after").stdout
    assert found.split()[0] == made["ip"]
    # Docker answers the unchangeable hostname too, so the old name stays taken.
    reused = lab.cli("machine", "create", "before", "--image", BASE, check=False)
    assert reused.code == 4 and "still the hostname of machine 'after'" in reused.stderr
    lab.cli("machine", "rm", "after")
