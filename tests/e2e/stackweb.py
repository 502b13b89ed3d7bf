"""HTTP to lab machines through the lab's reverse proxy by name, for the stack scenarios.
Redirects to the same name are followed through the proxy too, so no lab name is ever
looked up in the host's resolver."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import requests

from tests.conftest import Result, onebox


def cli(lab: Any, *args: str, check: bool = True) -> Result:
    """The CLI on the test lab, with pulls skipped: no registry answers here."""
    return onebox(*args, check=check, env={"ONEBOX_OFFLINE": "1", "ONEBOX_LAB": lab.name})


class Site:
    def __init__(self, lab: Any, machine: str) -> None:
        self.host = f"{machine}.{lab.domain}"
        self.base = f"http://127.0.0.1:{lab.info['gateway']['http_port']}"
        self.session = requests.Session()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        for _ in range(5):
            response = self.session.request(
                method,
                self.base + path,
                headers={"Host": self.host},
                allow_redirects=False,
                timeout=30,
                **kwargs,
            )
            target = urlsplit(response.headers.get("location", ""))
            if not response.is_redirect or target.hostname not in (None, self.host):
                return response
            method, kwargs = "GET", {}
            path = target.path + (f"?{target.query}" if target.query else "")
        return response

    def get(self, path: str = "/") -> requests.Response:
        return self.request("GET", path)

    def wait(self, path: str = "/", patience: float = 60.0) -> requests.Response:
        """The first answer that is not a proxy error (the app may still be starting)."""
        deadline = time.monotonic() + patience
        while True:
            try:
                response = self.get(path)
                if response.status_code < 500 or time.monotonic() > deadline:
                    return response
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)
