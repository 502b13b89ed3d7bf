"""Scenario 1: a lab comes up with a gateway at a fixed address, answers DNS, and a
second `up` changes nothing. Several labs live side by side."""

from __future__ import annotations

import ipaddress
from typing import Any

from tests.conftest import LabHandle, make_lab, onebox
from tests.e2e.dnsclient import addresses, ask


def test_up_creates_network_and_gateway_at_fixed_address(lab: LabHandle, engine: Any) -> None:
    info = lab.info
    subnet = ipaddress.IPv4Network(info["subnet"])
    assert info["gateway"]["ip"] == str(subnet[2])
    assert info["domain"].endswith(".internal")
    network = engine.client.networks.get(f"{lab.name}_net")
    assert network.attrs["IPAM"]["Config"][0]["Subnet"] == str(subnet)
    gateway = engine.client.containers.get(f"{lab.name}_gateway")
    address = gateway.attrs["NetworkSettings"]["Networks"][f"{lab.name}_net"]["IPAddress"]
    assert address == info["gateway"]["ip"]


def test_status_json_names_the_lab_and_gateway_entry_points(lab: LabHandle) -> None:
    status = lab.cli("status", "--json").json()
    assert status["lab"] == lab.name
    assert status["domain"] == lab.domain
    assert status["subnet"] == lab.info["subnet"]
    assert status["gateway"]["ip"] == lab.info["gateway"]["ip"]
    assert isinstance(status["gateway"]["dns_port"], int)
    assert status["machines"] == [] or isinstance(status["machines"], list)


def test_gateway_answers_dns_for_itself_on_the_host_port(lab: LabHandle) -> None:
    reply = ask(f"gateway.{lab.domain}", lab.dns_port)
    assert addresses(reply) == [lab.info["gateway"]["ip"]]


def test_second_up_changes_nothing_and_says_so(lab: LabHandle) -> None:
    again = onebox("up", "--lab", lab.name)
    assert "nothing changed" in again.stdout
    assert onebox("up", "--lab", lab.name, "--json").json()["changed"] is False


def test_two_labs_live_side_by_side_with_their_own_subnets_and_ports(
    lab: LabHandle, engine: Any
) -> None:
    second_lab = make_lab(engine)
    other = next(second_lab)
    try:
        assert other.info["subnet"] != lab.info["subnet"]
        assert other.dns_port != lab.dns_port
        assert addresses(ask(f"gateway.{other.domain}", other.dns_port)) == [
            other.info["gateway"]["ip"]
        ]
        names = [x["lab"] for x in onebox("lab", "ls", "--json").json()]
        assert lab.name in names and other.name in names
    finally:
        second_lab.close()


def test_down_keeps_the_lab_and_up_brings_it_back(lab: LabHandle, engine: Any) -> None:
    lab.cli(
        "machine",
        "create",
        "keeper",
        "--image",
        "onebox/busybox:latest",
        "--",
        "httpd",
        "-f",
        "-p",
        "80",
    )
    before = lab.cli("machine", "show", "keeper", "--json").json()
    lab.cli("down")
    assert lab.cli("machine", "show", "keeper", "--json").json()["state"] == "exited"
    assert lab.cli("status", "--json").json()["gateway"]["state"] == "exited"
    lab.cli("up")
    after = lab.cli("machine", "show", "keeper", "--json").json()
    assert after["state"] == "running"
    assert after["ip"] == before["ip"]
    lab.cli("machine", "rm", "keeper")


def test_destroy_removes_everything_it_made(engine: Any, busybox_image: str) -> None:
    made = make_lab(engine)
    other = next(made)
    try:
        other.cli(
            "machine", "create", "doomed", "--image", busybox_image, "--", "httpd", "-f", "-p", "80"
        )
        refused = onebox("destroy", "--lab", other.name, check=False)
        assert refused.code != 0 and "--yes" in refused.stderr
        onebox("destroy", "--lab", other.name, "--yes")
        label = {"label": f"onebox.lab={other.name}"}
        assert engine.client.containers.list(all=True, filters=label) == []
        assert engine.client.networks.list(filters=label) == []
        assert engine.client.volumes.list(filters=label) == []
    finally:
        made.close()


def test_a_down_lab_refuses_new_machines_and_up_keeps_stopped_ones_stopped(lab: LabHandle) -> None:
    lab.cli(
        "machine",
        "create",
        "runner",
        "--image",
        "onebox/busybox:latest",
        "--",
        "httpd",
        "-f",
        "-p",
        "80",
    )
    lab.cli(
        "machine",
        "create",
        "sleeper",
        "--image",
        "onebox/busybox:latest",
        "--",
        "httpd",
        "-f",
        "-p",
        "80",
    )
    lab.cli("machine", "stop", "sleeper")
    lab.cli("down")
    refused = lab.cli("machine", "create", "late", "--image", "onebox/busybox:latest", check=False)
    assert refused.code == 4 and "is down" in refused.stderr and "onebox up" in refused.stderr
    assert lab.cli("machine", "start", "runner", check=False).code == 4
    lab.cli("up")
    states = {m["name"]: m["state"] for m in lab.cli("machine", "ls", "--json").json()}
    assert states["runner"] == "running"
    assert states["sleeper"] == "exited"
    lab.cli("machine", "rm", "runner")
    lab.cli("machine", "rm", "sleeper")
