"""The dashboard's pages render from memory, all 200 machines of a large lab, with empty states,
and every vendored library is served with its licence."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from onebox.dashboard.pages import HERE
from tests.unit.dashboard_fakes import BASE_URL, PASSWORD, make_app


def logged_in(tmp: Path, count: int) -> TestClient:
    app, _, _ = make_app(tmp, count)
    client = TestClient(app, base_url=BASE_URL)
    assert (
        client.post("/api/session", json={"username": "admin", "password": PASSWORD}).status_code
        == 200
    )
    return client


def test_machines_page_lists_all_200_machines(tmp_path: Path) -> None:
    # Its server time is a benchmark figure (bench/RESULTS.md), not a test assertion.
    client = logged_in(tmp_path, 200)
    page = client.get("/")
    assert page.status_code == 200
    assert page.text.count('<tr data-name="') == 200


def test_empty_lab_says_what_to_do_next(tmp_path: Path) -> None:
    page = logged_in(tmp_path, 0).get("/").text
    assert "No machines yet" in page
    assert "onebox machine create web1 --lab lab" in page


def test_every_page_renders(tmp_path: Path) -> None:
    client = logged_in(tmp_path, 3)
    for path in [
        "/",
        "/machines/m1",
        "/machines/m1/terminal",
        "/images",
        "/networks",
        "/events",
        "/machines/nothere",
    ]:
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert 'name="csrf"' in answer.text


def test_vendored_libraries_are_served_with_their_licences(tmp_path: Path) -> None:
    client = logged_in(tmp_path, 1)
    vendor = HERE / "static" / "vendor"
    for name in ["xterm-6.0.0.js", "xterm-6.0.0.css", "addon-fit-0.11.0.js"]:
        assert client.get(f"/static/vendor/{name}").status_code == 200
    assert (
        "MIT" in (vendor / "xterm.LICENSE.txt").read_text()
        or "Permission" in (vendor / "xterm.LICENSE.txt").read_text()
    )
    assert (vendor / "addon-fit.LICENSE.txt").is_file()
    terminal = client.get("/machines/m0/terminal").text
    assert "http" not in terminal.split("<body")[0].replace("http-equiv", "")
