"""The API's guard: Host names, logins, sessions, tokens and CSRF, over a stand-in
backend (no engine)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from onebox.api import auth
from onebox.labs import admin
from tests.unit.dashboard_fakes import BASE_URL, PASSWORD, make_app


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    app, _, _ = make_app(tmp_path)
    return TestClient(app, base_url=BASE_URL)


def login(client: TestClient) -> str:
    answer = client.post("/api/session", json={"username": "admin", "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["csrf"])


def test_password_hash_verifies_only_the_right_password() -> None:
    encoded = admin.hash_password("s3cret")
    assert admin.verify_password("s3cret", encoded)
    assert not admin.verify_password("s3cret ", encoded)
    assert not admin.verify_password("s3cret", "garbage")


@pytest.mark.parametrize(
    "host",
    ["evil.example:17800", "127.0.0.1:9999", "localhost", "10.99.0.3", "gateway.other.internal"],
)
def test_requests_naming_another_host_are_refused_with_421(client: TestClient, host: str) -> None:
    answer = client.get("/login", headers={"Host": host})
    assert answer.status_code == 421
    assert "127.0.0.1:17800" in answer.text


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:17800",
        "localhost:17800",
        "gateway.lab.internal",
        "GATEWAY.LAB.INTERNAL.:443",
        "10.99.0.2:8000",
    ],
)
def test_the_gateways_own_names_are_served(client: TestClient, host: str) -> None:
    assert client.get("/login", headers={"Host": host}).status_code == 200


def test_api_needs_a_login(client: TestClient) -> None:
    answer = client.get("/api/machines")
    assert answer.status_code == 401
    assert "fix" in answer.json()


def test_pages_send_strangers_to_the_login_page(client: TestClient) -> None:
    answer = client.get("/machines/m0", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fmachines%2Fm0"


def test_wrong_password_is_refused_and_guessing_is_throttled(client: TestClient) -> None:
    for _ in range(auth.Throttle().limit):
        answer = client.post("/api/session", json={"username": "admin", "password": "no"})
        assert answer.status_code == 401
    answer = client.post("/api/session", json={"username": "admin", "password": PASSWORD})
    assert answer.status_code == 429


def test_session_cookie_reads_but_changes_need_the_csrf_header(client: TestClient) -> None:
    csrf = login(client)
    assert client.get("/api/machines").status_code == 200
    assert client.post("/api/machines/m0/stop").status_code == 403
    assert (
        client.post("/api/machines/m0/stop", headers={"X-CSRF-Token": "forged"}).status_code == 403
    )
    answer = client.post("/api/machines/m0/stop", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200
    assert answer.json()["state"] == "exited"


def test_cross_site_origin_is_refused_even_with_the_token(client: TestClient) -> None:
    csrf = login(client)
    answer = client.post(
        "/api/machines/m0/stop", headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
    )
    assert answer.status_code == 403
    same = client.post("/api/machines/m0/stop", headers={"X-CSRF-Token": csrf, "Origin": BASE_URL})
    assert same.status_code == 200


def test_bearer_token_works_without_csrf_and_can_be_revoked(client: TestClient) -> None:
    csrf = login(client)
    made = client.post("/api/tokens", json={"name": "ci"}, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201
    token = made.json()["token"]
    bare = TestClient(client.app, base_url=BASE_URL)
    bearer = {"Authorization": f"Bearer {token}"}
    assert bare.post("/api/machines/m1/restart", headers=bearer).status_code == 200
    assert [t["name"] for t in bare.get("/api/tokens", headers=bearer).json()] == ["ci"]
    assert "token" not in bare.get("/api/tokens", headers=bearer).json()[0]
    assert bare.delete(f"/api/tokens/{made.json()['id']}", headers=bearer).status_code == 204
    assert bare.get("/api/machines", headers=bearer).status_code == 401
    assert bare.get("/api/machines", headers={"Authorization": "Bearer obt_x_y"}).status_code == 401


def test_password_reset_ends_open_sessions(tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path)
    client = TestClient(app, base_url=BASE_URL)
    login(client)
    assert client.get("/api/machines").status_code == 200
    import os

    path = tmp_path / admin.ADMIN_FILE
    path.write_bytes(admin.record("new password"))
    os.utime(path, (path.stat().st_mtime + 5, path.stat().st_mtime + 5))
    assert client.get("/api/machines").status_code == 401


def test_forged_or_expired_session_cookie_is_no_session(tmp_path: Path) -> None:
    sessions = auth.Sessions(b"k" * 32, seconds=60)
    account = auth.Admin("admin", "h", "g1")
    value, _ = sessions.issue(account, now=1000.0)
    assert sessions.read(value, account, now=1010.0) is not None
    assert sessions.read(value, account, now=1100.0) is None
    assert sessions.read(value + "x", account, now=1010.0) is None
    assert sessions.read(value, auth.Admin("admin", "h", "g2"), now=1010.0) is None
    other = auth.Sessions(b"o" * 32)
    assert other.read(value, account, now=1010.0) is None


def test_login_form_needs_its_nonce_and_redirects_only_inside(client: TestClient) -> None:
    page = client.get("/login?next=https://evil.example/")
    assert page.status_code == 200
    nonce = client.cookies.get("onebox_login")
    assert 'name="next" value="/"' in page.text
    refused = client.post(
        "/login", data={"username": "admin", "password": PASSWORD, "nonce": "wrong", "next": "/"}
    )
    assert refused.status_code == 403
    done = client.post(
        "/login",
        data={"username": "admin", "password": PASSWORD, "nonce": nonce, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/"


def test_form_posts_need_the_sessions_csrf_field(client: TestClient) -> None:
    csrf = login(client)
    refused = client.post("/new", data={"name": "web9", "image": "onebox/busybox:latest"})
    assert refused.status_code == 403
    made = client.post(
        "/new",
        data={"name": "web9", "image": "onebox/busybox:latest", "csrf": csrf},
        follow_redirects=False,
    )
    assert made.status_code == 303


def test_websocket_from_another_origin_is_refused(client: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    login(client)
    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect(
            "/api/machines/m0/terminal", headers={"Origin": "http://evil.example"}
        ) as ws,
    ):
        ws.receive_bytes()
