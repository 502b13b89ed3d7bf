"""Scenario 4: bad input gets a clear error that says what to do, and leaves nothing
behind: no container, no taken address."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from tests.conftest import LabHandle, onebox

BASE = "onebox/base:bookworm"


def lab_containers(engine: Any, lab: LabHandle) -> set[str]:
    found = engine.client.containers.list(all=True, filters={"label": f"onebox.lab={lab.name}"})
    return {c.name for c in found}


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("web_1", "not a valid DNS label"),
        ("-web", "not a valid DNS label"),  # after --, as a user must write it
        ("a" * 64, "at most 63"),
        ("gateway", "reserved"),
    ],
)
def test_invalid_names_are_refused_and_nothing_is_made(
    lab: LabHandle, engine: Any, name: str, words: str
) -> None:
    before = lab_containers(engine, lab)
    result = lab.cli("machine", "create", "--image", BASE, "--", name, check=False)
    assert result.code == 2
    assert words in result.stderr and "fix:" in result.stderr
    assert lab_containers(engine, lab) == before


def test_empty_name_is_refused(lab: LabHandle) -> None:
    result = lab.cli("machine", "create", "", "--image", BASE, check=False)
    assert result.code == 2 and "cannot be empty" in result.stderr


def test_duplicate_name_is_refused(lab: LabHandle, engine: Any) -> None:
    lab.cli("machine", "create", "twin", "--image", BASE)
    before = lab_containers(engine, lab)
    result = lab.cli("machine", "create", "twin", "--image", BASE, check=False)
    assert result.code == 4 and "already exists" in result.stderr
    assert lab_containers(engine, lab) == before
    lab.cli("machine", "rm", "twin")


@pytest.mark.parametrize(
    ("where", "code", "words"),
    [
        ("outside", 2, "outside the lab subnet"),
        ("reserved", 2, "reserved"),
        ("taken", 4, "taken by"),
        ("garbage", 2, "not an IPv4 address"),
    ],
)
def test_bad_addresses_are_refused(
    lab: LabHandle, engine: Any, where: str, code: int, words: str
) -> None:
    subnet = ipaddress.IPv4Network(lab.info["subnet"])
    address = {
        "outside": "192.0.2.77",
        "reserved": str(subnet[2]),
        "taken": lab.info["gateway"]["ip"],
        "garbage": "10.1.2",
    }[where]
    if where == "taken":
        holder = lab.cli("machine", "create", "holder", "--image", BASE, "--json").json()
        address = holder["ip"]
    before = lab_containers(engine, lab)
    result = lab.cli("machine", "create", "hopeful", "--image", BASE, "--ip", address, check=False)
    assert result.code == code and words in result.stderr, result.stderr
    assert lab_containers(engine, lab) == before
    if where == "taken":
        lab.cli("machine", "rm", "holder")


def test_missing_image_is_refused(lab: LabHandle, engine: Any) -> None:
    before = lab_containers(engine, lab)
    result = lab.cli("machine", "create", "ghost", "--image", "obtest-no-such-image:1", check=False)
    assert result.code == 3 and "does not exist" in result.stderr
    assert lab_containers(engine, lab) == before


def test_command_that_exits_at_once_removes_the_machine_and_frees_the_address(
    lab: LabHandle, engine: Any
) -> None:
    before = lab_containers(engine, lab)
    result = lab.cli(
        "machine",
        "create",
        "quitter",
        "--image",
        BASE,
        "--",
        "sh",
        "-c",
        "echo going away; exit 3",
        check=False,
    )
    assert result.code == 6
    assert "did not start" in result.stderr and "code 3" in result.stderr
    assert "going away" in result.stderr
    assert lab_containers(engine, lab) == before
    probe = lab.cli("machine", "create", "probe", "--image", BASE, "--json").json()
    listed = lab.cli("machine", "ls", "--json").json()
    used = {m["ip"] for m in listed if m["name"] != "probe"}
    expected = min(
        (
            a
            for a in ipaddress.IPv4Network(lab.info["subnet"]).hosts()
            if int(a) % 256 >= 10 and str(a) not in used
        ),
        key=int,
    )
    assert probe["ip"] == str(expected)
    lab.cli("machine", "rm", "probe")


def test_unknown_machine_and_unknown_lab_say_how_to_list(lab: LabHandle) -> None:
    result = lab.cli("machine", "stop", "nosuch", check=False)
    assert result.code == 3 and "onebox machine ls" in result.stderr
    result = onebox("status", "--lab", "obtest-no-such-lab", check=False)
    assert result.code == 3 and "onebox up --lab obtest-no-such-lab" in result.stderr


def test_overlapping_subnet_is_refused_naming_the_owner(lab: LabHandle) -> None:
    result = onebox("up", "--lab", "obtest-overlap", "--subnet", lab.info["subnet"], check=False)
    assert result.code == 4
    assert f"{lab.name}_net" in result.stderr


def test_engine_not_running_says_how_to_start_one(tmp_path: Any) -> None:
    sock = f"unix://{tmp_path}/no-engine.sock"
    result = onebox("status", env={"DOCKER_HOST": sock}, check=False)
    assert result.code == 5
    assert "No Docker engine answers" in result.stderr and "dockerd" in result.stderr


def test_bad_lab_name_is_refused() -> None:
    result = onebox("up", "--lab", "Bad_Lab", check=False)
    assert result.code == 2 and "Lab name" in result.stderr
