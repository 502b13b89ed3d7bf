"""Scenario 9: the dashboard and the API in a real gateway, driven by Chromium (Debian's
/usr/bin/chromium through Playwright) and by schemathesis against /openapi.json. Every
request goes to the lab's dashboard port on 127.0.0.1 or to the lab's own network."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, LabHandle
from tests.e2e.browser import needs_chromium, wait_until

BUSYBOX = "onebox/busybox:latest"
# The README's picture is refreshed only on request (ONEBOX_SCREENSHOT=1), so that a test
# run leaves the checkout as it found it.
SCREENSHOT = (
    ROOT / "docs" / "dashboard.png"
    if os.environ.get("ONEBOX_SCREENSHOT") == "1"
    else Path(tempfile.gettempdir()) / "onebox-dashboard.png"
)

pytestmark = [pytest.mark.engine, needs_chromium]


def test_login_leads_to_the_machines_page(page: Any, dash: dict[str, Any]) -> None:
    page.goto(dash["url"] + "/")
    assert "/login" in page.url
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert "Wrong user name or password" in page.inner_text("main")
    page.fill("input[name=password]", dash["password"])
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Machines')")
    assert page.url.rstrip("/") == dash["url"]


def test_machine_made_in_the_form_appears_with_its_address_without_reload(
    page: Any, lab: LabHandle
) -> None:
    page.evaluate("window.sameDocument = true")
    page.click("#new-toggle")
    page.fill("#create input[name=name]", "web1")
    page.fill("#create input[name=image]", BUSYBOX)
    page.fill("#create input[name=command]", "httpd -f -p 80 -h /")
    page.click("#create button[type=submit]")
    cell = page.locator("tr[data-name=web1] td.ip")
    cell.wait_for()
    address = wait_until(lambda: cell.inner_text().strip(), "web1's address")
    assert ipaddress.IPv4Address(address) in ipaddress.IPv4Network(lab.info["subnet"])
    assert page.evaluate("window.sameDocument") is True
    assert page.locator("tr[data-name=web1] td.state").inner_text() == "running"


def test_terminal_runs_hostname_in_the_machine(page: Any, dash: dict[str, Any]) -> None:
    page.goto(dash["url"] + "/machines/web1/terminal")
    page.wait_for_selector("#term-status:has-text('Connected')")
    page.click("#terminal")
    page.keyboard.type("hostname\n")
    lines = wait_until(
        lambda: "web1" in _screen(page).splitlines() and _screen(page), "`web1` on the terminal"
    )
    assert "hostname" in lines


def _screen(page: Any) -> str:
    return str(
        page.evaluate(
            "() => { const b = window.oneboxTerminal.buffer.active; const out = [];"
            " for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));"
            " return out.join('\\n'); }"
        )
    )


def test_traffic_counter_rises_while_a_neighbour_downloads_from_it(
    page: Any, lab: LabHandle, dash: dict[str, Any]
) -> None:
    web1 = lab.cli("machine", "show", "web1", "--json").json()
    lab.cli("machine", "create", "client", "--image", BUSYBOX)
    page.goto(dash["url"] + "/")
    sent = page.locator("tr[data-name=web1] td.tx .total")
    sent.wait_for()
    before = _bytes(sent.inner_text())
    # Bounded: 20 downloads of busybox's 2 MB binary over the lab's own network.
    script = f"for i in $(seq 1 20); do wget -q -O /dev/null http://{web1['ip']}/bin/busybox; done"
    loader = threading.Thread(
        target=lab.cli, args=("machine", "exec", "client", "--", "sh", "-c", script)
    )
    loader.start()
    try:
        wait_until(
            lambda: _bytes(sent.inner_text()) > before + 1024 * 1024,
            "web1's sent counter to rise by 1 MiB",
            seconds=60,
        )
    finally:
        loader.join(timeout=120)
    rate = page.locator("tr[data-name=web1] td.tx .rate").inner_text()
    assert rate.endswith("/s")


def _bytes(text: str) -> float:
    number, unit = text.split()
    return float(number) * {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]


def test_screenshot_of_the_machines_page(page: Any, lab: LabHandle, dash: dict[str, Any]) -> None:
    for name in ("db", "cache"):
        lab.cli("machine", "create", name, "--image", BUSYBOX)
    page.goto(dash["url"] + "/")
    page.wait_for_selector("tr[data-name=cache]")
    page.wait_for_timeout(2500)  # a few stats samples, so the sparklines have a shape
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000


def test_stop_shows_the_new_state_live(page: Any, dash: dict[str, Any]) -> None:
    page.goto(dash["url"] + "/machines/web1")
    page.wait_for_selector("#state:has-text('running')")
    page.click("button[data-action=stop]")
    page.wait_for_selector("#state:has-text('exited')")
    page.click("button[data-action=start]")
    page.wait_for_selector("#state:has-text('running')")


def test_remove_asks_first_then_the_machine_goes(
    page: Any, lab: LabHandle, dash: dict[str, Any]
) -> None:
    page.goto(dash["url"] + "/machines/client")
    page.click("button[data-action=remove]")
    page.click("#confirm button[value=cancel]")
    assert lab.cli("machine", "show", "client", check=False).code == 0
    page.click("button[data-action=remove]")
    assert "Remove machine client?" in page.inner_text("#confirm")
    page.click("#confirm-ok")
    page.wait_for_url(re.compile(r".*/$"))
    wait_until(lambda: page.locator("tr[data-name=client]").count() == 0, "client's row to go")
    assert lab.cli("machine", "show", "client", check=False).code == 3


def test_api_answers_no_server_error_to_generated_requests(
    dash: dict[str, Any], tmp_path: Path
) -> None:
    with httpx.Client(base_url=dash["url"], timeout=30) as client:
        csrf = client.post(
            "/api/session", json={"username": "admin", "password": dash["password"]}
        ).json()["csrf"]
        token = client.post(
            "/api/tokens", json={"name": "schemathesis"}, headers={"X-CSRF-Token": csrf}
        ).json()["token"]
    st = str(Path(sys.executable).parent / "st")
    # Streams never end, so they are left out; revoking tokens would revoke our own.
    done = subprocess.run(
        [
            st,
            "run",
            f"{dash['url']}/openapi.json",
            "-H",
            f"Authorization: Bearer {token}",
            "--max-examples",
            "8",
            "--checks",
            "not_a_server_error",
            "--request-timeout",
            "30",
            "--exclude-path-regex",
            "(stream|follow|terminal)",
            "--exclude-operation-id",
            "delete_token",
            # A launch builds images and makes machines: scenario 13 drives it for real.
            "--exclude-operation-id",
            "launch_template",
            "--generation-deterministic",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
    )
    summary = done.stdout[-3000:]
    assert done.returncode == 0, summary
    assert "Authentication failed" not in summary, summary
    assert re.search(r"\d+ generated, \d+ passed", summary), summary
