import ipaddress

import pytest

from onebox.dashboard.plane import lab_names
from onebox.gateway import settings as gateway_settings


def make(**extra: object) -> gateway_settings.Settings:
    values: dict[str, object] = {
        "lab": "dev",
        "domain": "dev.internal",
        "subnet": ipaddress.IPv4Network("10.80.5.0/24"),
        "gateway_ip": ipaddress.IPv4Address("10.80.5.2"),
        "upstream": None,
        **extra,
    }
    return gateway_settings.Settings(**values)  # type: ignore[arg-type]


def test_a_shared_gateway_answers_to_the_hosts_own_names() -> None:
    names = lab_names(make(bind="0.0.0.0", host_names=("labhost", "192.0.2.2")))
    assert {"labhost", "192.0.2.2", "gateway.dev.internal", "10.80.5.2"} <= names


def test_a_loopback_gateway_answers_only_to_lab_names() -> None:
    assert lab_names(make()) == {"gateway.dev.internal", "10.80.5.2"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", gateway_settings.DOCKER_RESOLVER),
        ("none", None),
        ("10.1.2.3", ("10.1.2.3", 53)),
        ("10.1.2.3:5353", ("10.1.2.3", 5353)),
    ],
)
def test_upstream_setting_is_parsed(text: str, expected: object) -> None:
    assert gateway_settings.parse_upstream(text) == expected
