"""The template shelf's routes over the stand-in backend: launches answer at once and run
in the background, their progress streams as server-sent events, secrets are shown once,
refusals come back in the usual error shape, and stacks are listed and removed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from onebox.api import launches
from onebox.errors import OneboxError
from tests.unit.dashboard_fakes import BASE_URL, PASSWORD, FakeBackend, make_app


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, FakeBackend]]:
    made, _, backend = make_app(tmp_path)
    # One event loop for the whole test, so launches outlive the request that starts them.
    with TestClient(made, base_url=BASE_URL) as client:
        csrf = client.post("/api/session", json={"username": "admin", "password": PASSWORD}).json()[
            "csrf"
        ]
        client.headers["X-CSRF-Token"] = csrf
        yield client, backend


def finished(client: TestClient, launch_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        launch: dict[str, Any] = client.get(f"/api/launches/{launch_id}").json()
        if launch["state"] != "running" or time.monotonic() > deadline:
            return launch
        time.sleep(0.02)


def sse(client: TestClient, path: str) -> list[tuple[str, Any]]:
    events = []
    with client.stream("GET", path) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in answer.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    return events


def test_templates_list_their_settings_and_services(app: Any) -> None:
    client, _ = app
    shelf = {t["name"]: t for t in client.get("/api/templates").json()}
    assert shelf["redis"]["settings"] == {"maxmemory": "64mb"}
    assert shelf["static-site"]["services"] == ["web"]


def test_launch_answers_at_once_then_finishes_in_the_background(app: Any) -> None:
    client, backend = app
    backend.gate.clear()
    answer = client.post("/api/templates/static-site/launch", json={"stack": "site"})
    assert answer.status_code == 202
    launch = answer.json()
    assert launch["state"] == "running"
    assert answer.headers["location"] == f"/api/launches/{launch['id']}"
    backend.gate.set()
    done = finished(client, launch["id"])
    assert done["state"] == "done", done
    assert done["lines"] == ["Building onebox/recipe-web:latest", "Creating machine site-web"]
    machine = done["result"]["machines"][0]
    assert (machine["name"], machine["service"]) == ("site-web", "web")
    assert machine["url"] == "http://site-web.lab.internal/"
    assert done["result"]["secrets_command"] == "onebox template secrets site --lab lab"


def test_progress_streams_every_line_then_the_result_with_its_secrets_once(app: Any) -> None:
    client, _ = app
    launch = client.post(
        "/api/templates/redis/launch", json={"stack": "cache", "settings": {"maxmemory": "1mb"}}
    ).json()
    events = sse(client, f"/api/launches/{launch['id']}/stream")
    assert [name for name, _ in events] == ["line", "line", "done"]
    assert events[1][1] == "Creating machine cache-redis"
    assert events[2][1]["result"]["secrets"] == {"REDIS_PASSWORD": "s3cret"}
    again = client.get(f"/api/launches/{launch['id']}").json()
    assert again["result"]["secrets"] == {}
    assert "s3cret" not in client.get("/api/launches").text
    assert sse(client, f"/api/launches/{launch['id']}/stream")[-1][1]["result"]["secrets"] == {}


def test_refusals_come_back_in_the_usual_error_shape(app: Any) -> None:
    client, _ = app
    cases = [
        ("nothere", {"stack": "x"}, 404),
        ("redis", {"stack": "Bad_Name"}, 422),
        ("redis", {"stack": "-x"}, 422),
        ("redis", {"stack": "x", "settings": {"nope": "1"}}, 422),
        ("redis", {"stack": "x", "settings": {"maxmemory": 1}}, 422),
        ("redis", {"stack": "x", "extra": True}, 422),
        ("redis", {}, 422),
        ("Not_A_Name", {"stack": "x"}, 422),
    ]
    for name, body, status in cases:
        answer = client.post(f"/api/templates/{name}/launch", json=body)
        assert answer.status_code == status, (name, body, answer.text)
        assert set(answer.json()) == {"error", "fix"} and answer.json()["fix"]


def test_a_second_launch_of_the_same_stack_is_refused(app: Any) -> None:
    client, backend = app
    backend.gate.clear()
    first = client.post("/api/templates/static-site/launch", json={"stack": "twice"})
    second = client.post("/api/templates/static-site/launch", json={"stack": "twice"})
    assert second.status_code == 409
    backend.gate.set()
    assert finished(client, first.json()["id"])["state"] == "done"
    third = client.post("/api/templates/static-site/launch", json={"stack": "twice"})
    assert third.status_code == 409  # the stack exists now
    assert "already exists" in third.json()["error"]


def test_a_launch_that_fails_later_keeps_its_error(app: Any) -> None:
    client, _ = app
    launch = client.post("/api/templates/broken/launch", json={"stack": "b1"}).json()
    done = finished(client, launch["id"])
    assert done["state"] == "failed"
    assert done["error"] == {
        "error": "Build of 'onebox/recipe-app:latest' failed",
        "fix": "fix the recipe",
    }
    assert done["result"] is None


def test_unknown_launch_is_not_found(app: Any) -> None:
    client, _ = app
    assert client.get("/api/launches/0123456789ab").status_code == 404
    assert client.get("/api/launches/xyz").status_code == 422


def test_stacks_are_listed_and_removed_with_or_without_their_data(app: Any) -> None:
    client, backend = app
    for stack in ("one", "two"):
        launch = client.post("/api/templates/static-site/launch", json={"stack": stack}).json()
        finished(client, launch["id"])
    assert [s["name"] for s in client.get("/api/stacks").json()] == ["one", "two"]
    assert client.delete("/api/stacks/one?volumes=maybe").status_code == 422
    assert client.delete("/api/stacks/one").json() == {"stack": "one", "removed": 1}
    assert client.delete("/api/stacks/two?volumes=true").json() == {"stack": "two", "removed": 3}
    assert backend.calls[-2:] == [
        ("remove_stack", "one volumes=False"),
        ("remove_stack", "two volumes=True"),
    ]
    assert client.get("/api/stacks").json() == []
    assert client.delete("/api/stacks/one").status_code == 404


def test_templates_page_shows_the_shelf_and_an_empty_stacks_list(app: Any) -> None:
    client, _ = app
    page = client.get("/templates").text
    assert page.count('<article class="card template"') == 3
    assert 'href="/templates" class="on"' in page
    assert "No stacks yet" in page
    assert 'data-key="maxmemory" value="64mb"' in page


def test_follow_sends_left_out_lines_as_one_note() -> None:
    async def scenario() -> list[str]:
        launch = launches.Launch("0" * 12, "t", "s", 0.0)
        for number in range(launches.MAX_LINES + 5):
            launch.add(f"line {number}")
        launch.finish(None, OneboxError("failed", None))
        return [event async for event in launches.follow(launch, 1.0)]

    events = asyncio.run(scenario())
    assert events[0] == 'event: line\ndata: "\\u2026 (5 lines left out)"\n\n'
    assert events[1] == 'event: line\ndata: "line 5"\n\n'
    assert len(events) == launches.MAX_LINES + 2
    assert '"state":"failed"' in events[-1]
