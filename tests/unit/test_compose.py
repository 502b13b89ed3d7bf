"""The compose model: name mapping, interpolation, every supported key, refusals; the
plan of a sample file is compared with a golden copy (UPDATE_GOLDEN=1 rewrites it)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from onebox.errors import InvalidInput
from onebox.templates import compose, interpolation

DATA = Path(__file__).parent / "data"
GOLDEN = Path(__file__).parent / "golden"


def golden(name: str, value: Any) -> None:
    path = GOLDEN / name
    text = json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1" or not path.exists():
        path.write_text(text)
    assert text == path.read_text()


def plain(project: compose.Project) -> dict[str, Any]:
    """The plan with paths relative to the data folder and file contents as text."""
    data = dataclasses.asdict(project)
    text = json.dumps(data, default=lambda v: v.decode() if isinstance(v, bytes) else str(v))
    return dict(json.loads(text.replace(str(DATA), "DATA")))


def test_service_names_map_to_dns_labels() -> None:
    names = ["web", "My_Web", "db__1", "API.v2", "_x_", "Front-End"]
    golden("name-mapping.json", {n: compose.machine_name("shop", n) for n in names})


def test_a_name_without_letters_or_digits_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no letters or digits"):
        compose.dns_label("__")


def test_a_machine_name_longer_than_a_dns_label_is_refused() -> None:
    with pytest.raises(InvalidInput, match="longer than a DNS label"):
        compose.machine_name("s" * 30, "x" * 40)


def test_two_services_mapping_to_one_machine_are_refused() -> None:
    data = {"services": {"web_1": {"image": "a"}, "web-1": {"image": "b"}}}
    with pytest.raises(InvalidInput, match="both map to machine 'shop-web-1'"):
        compose.plan(data, "shop", DATA, {})


def test_sample_plan_matches_golden() -> None:
    project = compose.load(
        DATA / "compose-sample.yaml", "shop", {"STACK": "shop", "FROM_CALLER": "caller"}
    )
    golden("compose-sample-plan.json", plain(project))


def test_sample_plan_orders_dependencies_first_and_lists_ignored_keys() -> None:
    project = compose.load(DATA / "compose-sample.yaml", "shop", {"STACK": "shop"})
    assert project.order == ["api", "migrate", "Web_Front"]
    assert project.ignored == [
        "networks.front.driver",
        "Web_Front.container_name",
        "Web_Front.deploy",
    ]
    web = project.services["Web_Front"]
    assert web.machine == "shop-web-front"
    assert web.aliases == ["Web_Front", "web-front", "www"]
    assert web.web_port == 80
    assert web.environment["GREETING"] == "hello $HOME"  # environment wins over env_file
    assert web.environment["QUOTED"] == "a b"
    assert project.services["api"].web_port == 8000


def test_a_dependency_cycle_is_refused() -> None:
    data = {
        "services": {
            "a": {"image": "x", "depends_on": ["b"]},
            "b": {"image": "x", "depends_on": ["a"]},
        }
    }
    with pytest.raises(InvalidInput, match="cycle among: a, b"):
        compose.plan(data, "shop", DATA, {})


@pytest.mark.parametrize(
    "service, message",
    [
        ({"image": "x", "depends_on": ["nope"]}, "which the file does not define"),
        ({"image": "x", "volumes": ["data:/data"]}, "does not declare"),
        ({"image": "x", "volumes": ["/only-target"]}, "anonymous volume"),
        ({"image": "x", "healthcheck": {"test": ["WRONG"]}}, "must start with CMD"),
        ({"image": "x", "healthcheck": {"test": "true", "interval": "soon"}}, "not understood"),
        ({"image": "x", "restart": "sometimes"}, "not a restart policy"),
        ({"image": "x", "depends_on": {"db": {"condition": "service_happy"}}}, "unknown"),
        ({"image": "x", "ports": ["eighty"]}, "not understood"),
        ({"command": "true"}, "neither `image` nor `build`"),
    ],
)
def test_bad_services_are_refused_with_the_reason(service: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        compose.plan({"services": {"db": {"image": "x"}, "web": service}}, "shop", DATA, {})


@pytest.mark.parametrize("name", ["Shop", "-shop", "a_b", "x" * 33, ""])
def test_bad_stack_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        compose.check_stack_name(name)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("$A-${A}", "1-1"),
        ("${MISSING}", ""),
        ("${MISSING:-dflt}", "dflt"),
        ("${EMPTY:-dflt}|${EMPTY-dflt}", "dflt|"),
        ("$$A costs $$5", "$A costs $5"),
        ("${A:?need A}", "1"),
    ],
)
def test_interpolation_follows_compose_rules(text: str, expected: str) -> None:
    assert interpolation.substitute(text, {"A": "1", "EMPTY": ""}) == expected


def test_a_required_variable_that_is_missing_says_so() -> None:
    with pytest.raises(InvalidInput, match="Variable 'DB' is required.*give a db"):
        interpolation.substitute("${DB:?give a db}", {})


def test_durations_convert_to_nanoseconds() -> None:
    assert compose.duration_ns("1m30s", "x") == 90 * 10**9
    assert compose.duration_ns("500ms", "x") == 500_000_000
    assert compose.duration_ns(2, "x") == 2 * 10**9
