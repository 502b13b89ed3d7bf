"""Scenario 13: the template shelf in a real gateway, driven by Chromium: a launch from the
Templates page builds (or reuses) its image and starts its machine from inside the
gateway, with progress shown live; the machine appears on an open Machines page without
a reload and answers by name through the lab's reverse proxy; secrets are shown once;
the stack goes from the Stacks list after a confirmation. Every request goes to
127.0.0.1; the lab is brought up with ONEBOX_OFFLINE=1, which its gateway inherits, so
no launch asks a registry."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import LabHandle, make_lab, new_name
from tests.e2e.browser import needs_chromium, wait_until

pytestmark = [pytest.mark.engine, needs_chromium]

BUILD_SECONDS = 300.0  # a first build of the nginx or redis recipe, when not cached


@pytest.fixture(scope="module")
def lab(engine: Any, busybox_image: str) -> Iterator[LabHandle]:
    previous = os.environ.get("ONEBOX_OFFLINE")
    os.environ["ONEBOX_OFFLINE"] = "1"
    try:
        yield from make_lab(engine)
    finally:
        if previous is None:
            os.environ.pop("ONEBOX_OFFLINE", None)
        else:
            os.environ["ONEBOX_OFFLINE"] = previous


def launch_from_the_shelf(page: Any, template: str, stack: str) -> Any:
    """Fills the template's form and launches; returns the launch's panel."""
    card = page.locator(f"article[data-template={template}]")
    card.locator(".launch-toggle").click()
    card.locator("input[name=stack]").fill(stack)
    card.locator("button[type=submit]").click()
    newest = page.locator("#launches .card.launch").first
    newest.locator(f".title:has-text('as stack {stack}')").wait_for()
    return page.locator(f".card.launch[data-launch='{newest.get_attribute('data-launch')}']")


def test_templates_page_shows_the_shelf_after_login(page: Any, dash: dict[str, Any]) -> None:
    page.goto(dash["url"] + "/templates")
    page.fill("input[name=password]", dash["password"])
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Templates')")
    names = page.locator("article.template").evaluate_all(
        "cards => cards.map(c => c.dataset.template)"
    )
    assert {"static-site", "redis", "wordpress", "mongodb"} <= set(names)
    assert page.locator("nav a.on").inner_text() == "Templates"
    assert page.locator("#stacks-empty").is_visible()


def test_stack_name_is_checked_before_anything_is_made(page: Any, lab: LabHandle) -> None:
    card = page.locator("article[data-template=static-site]")
    card.locator(".launch-toggle").click()
    card.locator("input[name=stack]").fill("Bad_Name")
    assert card.locator("code[data-service=web]").inner_text() == "Bad_Name-web"
    card.locator("button[type=submit]").click()
    assert "lower-case letters" in card.locator(".progress").inner_text()
    card.locator(".launch-toggle").click()
    mongo = page.locator("article[data-template=mongodb]")
    mongo.locator(".launch-toggle").click()
    mongo.locator("input[name=stack]").fill("docs")
    mongo.locator("button[type=submit]").click()
    refusal = mongo.locator(".progress.bad")
    refusal.wait_for()
    assert "mongo:7" in refusal.inner_text() and "docker load" in refusal.inner_text()
    assert lab.cli("stack", "ls", "--json").json() == []


def test_static_site_launch_shows_progress_and_its_machine_appears_live(
    page: Any, lab: LabHandle, dash: dict[str, Any]
) -> None:
    machines = page.context.new_page()
    try:
        machines.goto(dash["url"] + "/")
        machines.wait_for_selector("h1:has-text('Machines')")
        machines.evaluate("window.sameDocument = true")
        panel = launch_from_the_shelf(page, "static-site", "site")
        wait_until(
            lambda: "Creating machine site-web" in panel.locator("pre.log").inner_text(),
            "the launch's progress line",
            BUILD_SECONDS,
        )
        panel.locator(".state.done").wait_for(timeout=BUILD_SECONDS * 1000)
        row = panel.locator("tr[data-machine=site-web]")
        address = row.locator("td.mono").inner_text()
        subnet = ipaddress.IPv4Network(lab.info["subnet"])
        assert ipaddress.IPv4Address(address) in subnet
        assert row.locator("a[target=_blank]").inner_text() == f"http://site-web.{lab.domain}/"
        assert panel.locator(".secrets").is_hidden()
        cell = machines.locator("tr[data-name=site-web] td.ip")
        wait_until(lambda: cell.count() and cell.inner_text() == address, "site-web on Machines")
        assert machines.evaluate("window.sameDocument") is True
    finally:
        machines.close()
    page.locator("#stacks tr[data-stack=site]").wait_for()


def test_launched_site_answers_by_name_through_the_reverse_proxy(lab: LabHandle) -> None:
    port = lab.info["gateway"]["http_port"]

    def answer() -> httpx.Response | None:
        try:
            got = httpx.get(
                f"http://127.0.0.1:{port}/", headers={"Host": f"site-web.{lab.domain}"}, timeout=5
            )
        except httpx.HTTPError:
            return None
        return got if got.status_code == 200 else None

    page = wait_until(answer, "site-web through the reverse proxy", 60)
    assert "Welcome to onebox" in page.text  # the nginx recipe's page, from the site volume
    made = lab.cli("stack", "ls", "--json").json()
    assert [s["name"] for s in made] == ["site"]


def test_redis_launch_shows_its_password_once(
    page: Any, lab: LabHandle, dash: dict[str, Any]
) -> None:
    panel = launch_from_the_shelf(page, "redis", "kv")
    panel.locator(".state.done").wait_for(timeout=BUILD_SECONDS * 1000)
    shown = panel.locator(".secrets .values").inner_text()
    kept = lab.cli("template", "secrets", "kv", "--json").json()
    assert shown == f"REDIS_PASSWORD={kept['REDIS_PASSWORD']}"
    assert f"onebox template secrets kv --lab {lab.name}" in panel.locator(".secrets").inner_text()
    launch_id = panel.get_attribute("data-launch")
    with httpx.Client(base_url=dash["url"], timeout=10) as client:
        client.post("/api/session", json={"username": "admin", "password": dash["password"]})
        again = client.get(f"/api/launches/{launch_id}").json()
    assert again["state"] == "done" and again["result"]["secrets"] == {}


def test_stacks_are_removed_from_the_list_after_a_confirmation(
    page: Any, lab: LabHandle, dash: dict[str, Any]
) -> None:
    page.goto(dash["url"] + "/templates")
    for stack, with_data in (("site", False), ("kv", True)):
        page.click(f"#stacks button[data-remove={stack}]")
        assert f"Remove stack {stack}?" in page.inner_text("#confirm")
        if with_data:
            page.check("#confirm-check")
        page.click("#confirm-ok")
        page.locator(f"#stacks tr[data-stack={stack}]").wait_for(state="detached")
    page.locator("#stacks-empty").wait_for()
    assert lab.cli("stack", "ls", "--json").json() == []
    assert lab.cli("template", "secrets", "kv", check=False).code == 3  # went with its data


def test_a_recipe_builds_from_inside_the_gateway(lab: LabHandle, engine: Any) -> None:
    """The gateway reaches the engine through its socket: the same build code the
    launches use makes an image there (a throwaway one, so no shared image is touched)."""
    tag = f"{new_name('build')}:latest"
    script = (
        "import pathlib, tempfile\n"
        "from onebox.engine import connect\n"
        "from onebox.templates.compose import Build\n"
        "from onebox.templates.image import ensure_built\n"
        "context = pathlib.Path(tempfile.mkdtemp())\n"
        "(context / 'Dockerfile').write_text("
        "'FROM onebox/base:bookworm\\nRUN echo built-in-the-gateway > /built\\n')\n"
        f"ensure_built(connect(), Build(context), {tag!r}, print)\n"
    )
    gateway = engine.gateway(lab.name)
    try:
        code, output = gateway.exec_run(["/opt/onebox/bin/python", "-c", script])
        assert code == 0, output.decode()
        assert f"Building {tag}" in output.decode()
        image = engine.image(tag)
        assert image is not None and image.labels.get("onebox.recipe.hash")
    finally:
        made = engine.image(tag)
        if made is not None:
            engine.client.images.remove(made.id, force=True)
