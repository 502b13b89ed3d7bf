"""Scenario 11: an existing compose file's services become machines: names mapped to DNS
labels, a one-shot seed and a health-gated dependency in order, a fixed address and
aliases, env files, a published port, a bind mount, and a named volume whose data
survives `compose down` and `compose up`; unsupported keys are listed in a warning."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stackweb import Site, cli

STACK = "shop"

COMPOSE = """
services:
  seed:
    image: {busybox}
    command: ["sh", "-c", "[ -f /data/index.html ] || echo seeded > /data/index.html"]
    restart: "no"
    volumes:
      - data:/data
  store:
    image: {busybox}
    command: httpd -f -p 80 -h /data
    depends_on:
      seed:
        condition: service_completed_successfully
    volumes:
      - data:/data
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/index.html"]
      interval: 1s
      retries: 30
  Web_Front:
    image: {busybox}
    entrypoint: ["/bin/sh", "-c"]
    command: ["wget -q -O /tmp/store-at-start http://store/; exec httpd -f -p 8080 -h /www"]
    env_file: ./web.env
    environment:
      GREETING: ${{GREETING:-hello}}
    ports:
      - "{port}:8080"
    volumes:
      - ./site:/www:ro
    depends_on:
      store:
        condition: service_healthy
    networks:
      default:
        ipv4_address: {address}
        aliases: [front]
    restart: unless-stopped
    deploy:
      replicas: 2
volumes:
  data:
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def project(lab: Any, busybox_image: str, tmp_path_factory: Any) -> Any:
    folder: Path = tmp_path_factory.mktemp("compose")
    (folder / "site").mkdir()
    (folder / "site" / "index.html").write_text("front page\n")
    (folder / "web.env").write_text("# for the front\nFROM_FILE=yes\n")
    port = free_port()
    address = lab.info["subnet"].rsplit(".", 1)[0] + ".77"
    (folder / "compose.yaml").write_text(
        COMPOSE.format(busybox=busybox_image, port=port, address=address)
    )
    try:
        result = cli(
            lab, "compose", "up", "-f", str(folder / "compose.yaml"), "--name", STACK, "--json"
        )
        yield {"folder": folder, "port": port, "address": address, "up": result}
    finally:
        cli(lab, "compose", "down", "--name", STACK, "--volumes", check=False)


def by_name(result: Any) -> dict[str, Any]:
    return {m["name"]: m for m in result.json()["machines"]}


def test_every_service_is_a_machine_with_a_dns_name(lab: Any, project: Any) -> None:
    machines = by_name(project["up"])
    assert set(machines) == {"shop-seed", "shop-store", "shop-web-front"}
    assert project["up"].json()["mapping"][-1] == ["Web_Front", "shop-web-front"]
    assert "Service 'Web_Front' becomes machine 'shop-web-front'" in project["up"].stderr
    assert machines["shop-web-front"]["ip"] == project["address"]
    assert machines["shop-seed"]["state"] == "exited"


def test_unsupported_keys_are_listed_in_one_warning(project: Any) -> None:
    warnings = [line for line in project["up"].stderr.splitlines() if "Warning" in line]
    assert len(warnings) == 1
    assert "Web_Front.deploy" in warnings[0]


def test_health_gated_service_starts_after_its_dependency_is_healthy(
    lab: Any, project: Any
) -> None:
    # The front fetched the store's page as it started: the store already answered.
    fetched = cli(lab, "machine", "exec", "shop-web-front", "--", "cat", "/tmp/store-at-start")
    assert fetched.stdout == "seeded\n"


def test_front_serves_the_bind_mount_by_name_and_on_its_published_port(
    lab: Any, project: Any
) -> None:
    assert Site(lab, "shop-web-front").wait("/").text == "front page\n"
    import requests

    direct = requests.get(f"http://127.0.0.1:{project['port']}/", timeout=10)
    assert direct.text == "front page\n"


def test_environment_and_env_file_reach_the_machine(lab: Any, project: Any) -> None:
    env = cli(lab, "machine", "exec", "shop-web-front", "--", "env").stdout
    assert "GREETING=hello" in env and "FROM_FILE=yes" in env


def test_service_names_and_aliases_resolve_inside_the_lab(lab: Any, project: Any) -> None:
    seeded = cli(
        lab,
        "machine",
        "exec",
        "shop-web-front",
        "--",
        "wget",
        "-q",
        "-O",
        "-",
        "http://store/index.html",
    ).stdout
    assert seeded == "seeded\n"
    front = cli(
        lab, "machine", "exec", "shop-store", "--", "wget", "-q", "-O", "-", "http://front:8080/"
    ).stdout
    assert front == "front page\n"


def test_named_volume_data_survives_down_and_up(lab: Any, engine: Any, project: Any) -> None:
    token = secrets.token_hex(8)
    cli(lab, "machine", "exec", "shop-store", "--", "sh", "-c", f"echo {token} > /data/token.txt")
    cli(lab, "compose", "down", "--name", STACK)
    assert cli(lab, "stack", "ls", "--json").json() == []
    volume = f"{lab.name}_{STACK}_data"
    assert engine.client.volumes.get(volume).attrs["Labels"]["onebox.stack"] == STACK

    again = cli(
        lab, "compose", "up", "-f", str(project["folder"] / "compose.yaml"), "--name", STACK
    )
    assert "Creating machine shop-store" in again.stderr
    assert Site(lab, "shop-store").wait("/token.txt").text == f"{token}\n"
    assert Site(lab, "shop-store").get("/index.html").text == "seeded\n"


def test_a_second_up_changes_nothing(lab: Any, project: Any) -> None:
    again = cli(
        lab, "compose", "up", "-f", str(project["folder"] / "compose.yaml"), "--name", STACK
    )
    assert "Creating machine" not in again.stderr


def test_down_with_volumes_removes_the_data(lab: Any, engine: Any, project: Any) -> None:
    cli(lab, "compose", "down", "--name", STACK, "--volumes")
    found = engine.client.volumes.list(
        filters={"label": [f"onebox.lab={lab.name}", f"onebox.stack={STACK}"]}
    )
    assert found == []
