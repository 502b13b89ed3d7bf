"""The API's routes and document: every route is in /openapi.json, bodies are checked
against its schemas, and onebox errors come back with their statuses."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient

from onebox.api.openapi import SCHEMAS, validate
from onebox.errors import InvalidInput
from onebox.metrics.history import History, TrafficRow
from tests.unit.dashboard_fakes import BASE_URL, PASSWORD, make_app


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    app, _, _ = make_app(tmp_path)
    client = TestClient(app, base_url=BASE_URL)
    csrf = client.post("/api/session", json={"username": "admin", "password": PASSWORD}).json()[
        "csrf"
    ]
    client.headers["X-CSRF-Token"] = csrf
    return client


def test_openapi_document_describes_every_api_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    served = set()
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, WebSocketRoute):
            served.add((route.path, "GET"))
        elif isinstance(route, Route) and route.path.startswith(("/api/", "/openapi")):
            served |= {(route.path, m) for m in route.methods or () if m != "HEAD"}
    assert served == documented
    for ops in spec["paths"].values():
        for op in ops.values():
            assert op["summary"] and op["responses"]


def test_openapi_schema_references_all_resolve(client: TestClient) -> None:
    text = client.get("/openapi.json").text
    import re

    for name in re.findall(r'#/components/schemas/(\w+)"', text):
        assert name in SCHEMAS


def test_create_checks_the_body_against_the_schema(client: TestClient) -> None:
    for body in [
        {},
        {"name": "web1"},
        {"name": "Web_1", "image": "onebox/busybox:latest"},
        {"name": "web1", "image": "onebox/busybox:latest", "web_port": 0},
        {"name": "web1", "image": "onebox/busybox:latest", "ip": "10.1"},
        {"name": "web1", "image": "onebox/busybox:latest", "extra": 1},
        [],
    ]:
        answer = client.post("/api/machines", json=body)
        assert answer.status_code == 422, body
        assert answer.json()["fix"]
    answer = client.post(
        "/api/machines", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422


def test_create_then_list_shows_the_machine_with_its_address(client: TestClient) -> None:
    made = client.post("/api/machines", json={"name": "web1", "image": "onebox/busybox:latest"})
    assert made.status_code == 201
    assert made.json()["ip"].startswith("10.99.0.")
    names = [m["name"] for m in client.get("/api/machines").json()]
    assert "web1" in names


def test_domain_errors_become_their_http_statuses(client: TestClient) -> None:
    assert (
        client.post(
            "/api/machines", json={"name": "m0", "image": "onebox/busybox:latest"}
        ).status_code
        == 409
    )
    missing = client.post("/api/machines", json={"name": "x1", "image": "nope:1"})
    assert missing.status_code == 404
    assert missing.json() == {"error": "Image 'nope:1' does not exist", "fix": "build it"}
    assert client.get("/api/machines/nothere").status_code == 404
    assert client.delete("/api/machines/nothere").status_code == 404
    assert client.get("/api/events?limit=0").status_code == 422
    assert client.get("/api/events?limit=abc").status_code == 422


def test_remove_then_machine_is_gone(client: TestClient) -> None:
    assert client.delete("/api/machines/m1").status_code == 204
    assert client.get("/api/machines/m1").status_code == 404


def test_traffic_comes_from_the_history_with_rates(tmp_path: Path) -> None:
    history = History(tmp_path / "h.sqlite")
    now = int(time.time())
    history.add_samples(
        [
            TrafficRow("web", now - 20, 1000, 100, 1.0, 10),
            TrafficRow("web", now - 10, 3000, 600, 1.0, 10),
            TrafficRow("other", now - 10, 5, 5, 0.0, 1),
        ]
    )
    points = history.traffic("web", now - 3600)
    assert [p["rx_rate"] for p in points] == [0.0, 200.0]
    assert points[1]["tx_rate"] == 50.0
    assert history.prune(now + 24 * 3600 - 15) == 1  # the sample of 20 s ago


def test_events_are_kept_newest_first(tmp_path: Path) -> None:
    history = History(tmp_path / "h.sqlite")
    history.add_event("web", "created", when=1.0)
    history.add_event("web", "started", when=2.0)
    history.add_event("db", "died", "exit code 1", when=3.0)
    assert [e["action"] for e in history.events(limit=2)] == ["died", "started"]
    assert [e["action"] for e in history.events(machine="web")] == ["started", "created"]


def test_validate_names_the_field_it_refuses() -> None:
    with pytest.raises(InvalidInput, match=r"body.command\[1\] is not a string"):
        validate(
            {"name": "a1", "image": "x", "command": ["ok", 3]},
            {"$ref": "#/components/schemas/MachineCreate"},
        )
