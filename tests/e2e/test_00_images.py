"""The images onebox makes without a registry: they exist after `ensure`, they run, and a
second `ensure` makes nothing. Containers here are named obtest-img-… and removed by id."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from onebox.engine import Engine, Label
from onebox.images import base, busybox, gateway, mirror, wheelhouse

pytestmark = pytest.mark.engine


def run(engine: Engine, image: str, command: list[str], entrypoint: str | None = None) -> str:
    """Runs a container to its end and returns its output; it is removed by id whatever
    happens."""
    container = engine.client.containers.create(
        image, command, entrypoint=entrypoint, name=f"obtest-img-{secrets.token_hex(3)}",
        labels={Label.TEST: "images"}, detach=True,
    )  # fmt: skip
    try:
        container.start()
        status = container.wait(timeout=120)
        output = container.logs().decode(errors="replace")
    finally:
        engine.client.api.remove_container(container.id, force=True, v=True)
    assert status["StatusCode"] == 0, output
    return str(output)


@pytest.fixture
def silent_registry() -> Iterator[str]:
    """A loopback port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def test_base_image_runs_debian_bookworm(engine: Engine) -> None:
    tag = base.ensure(engine, lambda line: None)
    assert tag == base.BASE_IMAGE
    assert run(engine, tag, ["cat", "/etc/debian_version"]).startswith("12.")


def test_bootstrapped_base_takes_its_apt_sources_from_the_host(engine: Engine) -> None:
    tag = base.ensure(engine, lambda line: None)
    if engine.require_image(tag).labels.get(base.BASE_LABEL) != base.CODENAME:
        pytest.skip("the base image was pulled from a registry, not bootstrapped")
    sources = run(engine, tag, ["cat", "/etc/apt/sources.list.d/debian.sources"])
    assert f"URIs: {mirror.archive_uri(mirror.host_sources())}" in sources
    assert "bookworm-updates" in sources


def test_busybox_image_runs_a_shell_and_serves_http_on_loopback(engine: Engine) -> None:
    tag = busybox.ensure(engine, lambda line: None)
    assert run(engine, tag, ["sh", "-c", "echo ok"]).strip() == "ok"
    assert "Usage: httpd" in run(engine, tag, ["sh", "-c", "httpd --help 2>&1; true"])
    script = (
        "echo hello > /var/www/index.html && httpd -p 127.0.0.1:8080 -h /var/www "
        "&& wget -q -O - http://127.0.0.1:8080/"
    )
    assert run(engine, tag, ["sh", "-c", script]).strip() == "hello"


def test_gateway_image_has_onebox_and_its_dependencies(engine: Engine) -> None:
    tag = gateway.ensure(engine, lambda line: None)
    code = "import onebox, dns, docker, uvloop; print('imported')"
    output = run(engine, tag, ["-c", code], entrypoint="/opt/onebox/bin/python")
    assert output.strip() == "imported"


def test_second_ensure_makes_nothing(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    # The checkout may be edited while tests run; one wheel for both calls keeps the
    # gateway's inputs equal.
    pinned = wheelhouse.project_wheel(lambda line: None)
    monkeypatch.setattr(wheelhouse, "project_wheel", lambda report: pinned)
    first = {module: module.ensure(engine, lambda line: None) for module in (base, busybox)}
    first[gateway] = gateway.ensure(engine, lambda line: None)
    ids = {module: engine.require_image(tag).id for module, tag in first.items()}

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an up-to-date image was made again")

    monkeypatch.setattr(base, "bootstrap", refuse)
    monkeypatch.setattr(base, "_tag_pulled", refuse)
    monkeypatch.setattr(busybox, "import_tar", refuse)
    monkeypatch.setattr(gateway, "_build", refuse)
    reported: list[str] = []
    for module, tag in first.items():
        assert module.ensure(engine, reported.append) == tag
        assert engine.require_image(tag).id == ids[module]
    assert reported == []


def test_pull_gives_up_when_the_registry_never_answers(
    engine: Engine, silent_registry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "PULL_IMAGE", f"{silent_registry}/debian:bookworm-slim")
    monkeypatch.setattr(base, "PULL_PATIENCE", 1.0)
    assert base._pull(engine) is False
