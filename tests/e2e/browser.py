"""Chromium for the dashboard scenarios: Debian's /usr/bin/chromium driven by Playwright
(whose own browser download cannot work here), and the lab's dashboard with a fresh
admin password. Every page it opens is on 127.0.0.1."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LabHandle

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium: apt-get install chromium"
)


def wait_until(check: Any, what: str, seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.25)


def dashboard(lab: LabHandle) -> dict[str, Any]:
    """The dashboard's address and a fresh admin password (the first one went to stderr)."""
    made = lab.cli("dashboard", "password", "--reset", "--json").json()
    url = lab.info["gateway"]["dashboard_url"].rstrip("/")
    wait_until(lambda: _answers(url), "the dashboard to answer")
    return {"url": url, "password": made["password"]}


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/login", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def chromium_page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # A context of its own, so that a test can open a second page beside it.
            context = browser.new_context(viewport={"width": 1280, "height": 720})
            page = context.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()
