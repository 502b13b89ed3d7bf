"""Scenario 2: machines get fixed addresses, names and the lab's DNS; they keep their
address across restarts, and removing one frees it."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from tests.conftest import LabHandle
from tests.e2e.dnsclient import addresses, ask, wait_for

BASE = "onebox/base:bookworm"


@pytest.fixture(scope="module")
def pair(lab: LabHandle) -> dict[str, Any]:
    first = lab.cli("machine", "create", "alpha", "--image", BASE, "--json").json()
    second = lab.cli("machine", "create", "beta", "--image", BASE, "--json").json()
    return {"alpha": first, "beta": second}


def test_create_gives_an_address_in_the_subnet_and_a_fqdn(lab: LabHandle, pair: dict) -> None:
    subnet = ipaddress.IPv4Network(lab.info["subnet"])
    alpha = pair["alpha"]
    assert ipaddress.IPv4Address(alpha["ip"]) in subnet
    assert alpha["fqdn"] == f"alpha.{lab.domain}"
    assert alpha["state"] == "running"
    assert pair["beta"]["ip"] != alpha["ip"]


def test_ls_json_lists_name_ip_fqdn_state_image(lab: LabHandle, pair: dict) -> None:
    listed = {m["name"]: m for m in lab.cli("machine", "ls", "--json").json()}
    assert {"alpha", "beta"} <= set(listed)
    for key in ("name", "ip", "fqdn", "state", "image"):
        assert key in listed["alpha"]
    assert listed["alpha"]["image"] == BASE


def test_machine_hostname_resolver_and_search_domain(lab: LabHandle, pair: dict) -> None:
    assert lab.cli("machine", "exec", "alpha", "--", "hostname").stdout.strip() == "alpha"
    resolv = lab.cli("machine", "exec", "alpha", "--", "cat", "/etc/resolv.conf").stdout
    assert f"search {lab.domain}" in resolv


def test_other_machines_resolve_by_bare_name_and_fqdn(lab: LabHandle, pair: dict) -> None:
    beta_ip = pair["beta"]["ip"]
    bare = lab.cli("machine", "exec", "alpha", "--", "getent", "hosts", "beta").stdout
    assert bare.split()[0] == beta_ip
    full = lab.cli("machine", "exec", "alpha", "--", "getent", "hosts", f"beta.{lab.domain}").stdout
    assert full.split()[0] == beta_ip


def test_dns_answers_machine_names_on_the_host_port(lab: LabHandle, pair: dict) -> None:
    assert addresses(ask(f"alpha.{lab.domain}", lab.dns_port)) == [pair["alpha"]["ip"]]
    assert addresses(ask(f"BETA.{lab.domain.upper()}", lab.dns_port, tcp=True)) == [
        pair["beta"]["ip"]
    ]


def test_address_survives_machine_restart_and_stop(lab: LabHandle, pair: dict) -> None:
    lab.cli("machine", "restart", "alpha")
    assert lab.cli("machine", "show", "alpha", "--json").json()["ip"] == pair["alpha"]["ip"]
    stopped = lab.cli("machine", "stop", "beta", "--json").json()
    assert stopped["state"] == "exited"
    # A stopped machine keeps its address: a new machine must not take it.
    third = lab.cli("machine", "create", "gamma", "--image", BASE, "--json").json()
    assert third["ip"] != pair["beta"]["ip"]
    started = lab.cli("machine", "start", "beta", "--json").json()
    assert started["ip"] == pair["beta"]["ip"]
    lab.cli("machine", "rm", "gamma")


def test_requested_address_is_used(lab: LabHandle) -> None:
    wanted = str(ipaddress.IPv4Network(lab.info["subnet"])[200])
    made = lab.cli("machine", "create", "fixed", "--image", BASE, "--ip", wanted, "--json").json()
    assert made["ip"] == wanted
    assert wait_for(f"fixed.{lab.domain}", lab.dns_port, [wanted]) == [wanted]
    lab.cli("machine", "rm", "fixed")


def test_remove_frees_the_address_and_the_name(lab: LabHandle) -> None:
    made = lab.cli("machine", "create", "temp", "--image", BASE, "--json").json()
    lab.cli("machine", "rm", "temp")
    assert wait_for(f"temp.{lab.domain}", lab.dns_port, []) == []
    again = lab.cli("machine", "create", "temp2", "--image", BASE, "--json").json()
    assert again["ip"] == made["ip"]
    lab.cli("machine", "rm", "temp2")


def test_exec_returns_the_command_exit_code(lab: LabHandle, pair: dict) -> None:
    result = lab.cli("machine", "exec", "alpha", "--", "sh", "-c", "echo out; exit 7", check=False)
    assert result.code == 7
    assert result.stdout.strip() == "out"


def test_logs_show_the_machine_output(lab: LabHandle, busybox_image: str) -> None:
    lab.cli(
        "machine",
        "create",
        "talker",
        "--image",
        busybox_image,
        "--",
        "sh",
        "-c",
        "echo hello-from-talker; exec sleep 3600",
    )
    assert "hello-from-talker" in lab.cli("machine", "logs", "talker").stdout
    lab.cli("machine", "rm", "talker")


def test_status_lists_every_machine(lab: LabHandle, pair: dict) -> None:
    status = lab.cli("status", "--json").json()
    names = {m["name"] for m in status["machines"]}
    assert {"alpha", "beta"} <= names
    table = lab.cli("status").stdout
    assert "alpha" in table and pair["alpha"]["ip"] in table


def test_a_container_joined_by_hand_gets_an_address_onebox_never_hands_out(
    lab: LabHandle, engine: Any, busybox_image: str
) -> None:
    subnet = ipaddress.IPv4Network(lab.info["subnet"])
    joined = engine.client.containers.run(
        busybox_image,
        ["sleep", "300"],
        name=f"{lab.name}-joined-by-hand",
        network=f"{lab.name}_net",
        labels={"onebox.lab": lab.name, "onebox.test": "1"},
        detach=True,
    )
    try:
        joined.reload()
        address = joined.attrs["NetworkSettings"]["Networks"][f"{lab.name}_net"]["IPAddress"]
        assert ipaddress.IPv4Address(address) in ipaddress.IPv4Network(
            (int(subnet.broadcast_address) - 31, 27)
        )
    finally:
        engine.client.api.remove_container(joined.id, force=True)
