"""The REST API's handlers, each declared with its OpenAPI description in OPERATIONS.
Lists are served from the gateway's memory; changes go to the domain packages in a
thread, since the engine's client blocks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

import onebox
from onebox.api import launches
from onebox.api.app import error_response, gateway_of, principal_of
from onebox.api.openapi import (
    NAME_PATTERN,
    STACK_PATTERN,
    Flag,
    Operation,
    Query,
    document,
    query_flag,
    query_int,
    validate,
)
from onebox.engine.terminal import Shell
from onebox.errors import InvalidInput, NotFound, OneboxError, http_status

log = logging.getLogger(__name__)

TAIL = Query("tail", 0, 10000, 200, "Lines from the end of the log")
LIMIT = Query("limit", 1, 1000, 100, "How many events, newest first")
MINUTES = Query("minutes", 1, 1440, 60, "How far back, in minutes")
VOLUMES = Flag("volumes", "Remove the stack's volumes and secrets too; its data is lost")
PING_SECONDS = 15.0


async def _body(request: Request, schema: str) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise InvalidInput(
            "The request body must be JSON", "send it with `Content-Type: application/json`"
        )
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise InvalidInput("The request body is not valid JSON", "send a JSON object") from exc
    validate(body, {"$ref": f"#/components/schemas/{schema}"})
    return body  # type: ignore[no-any-return]


def _name(request: Request, what: str = "machine name") -> str:
    name = str(request.path_params["name"])
    validate(name, {"type": "string", "pattern": NAME_PATTERN}, what)
    return name


def _machine_row(request: Request, name: str) -> dict[str, Any]:
    gateway = gateway_of(request)
    machine = gateway.inventory.get(name)
    if machine is None:
        raise NotFound(
            f"Machine '{name}' does not exist in lab '{gateway.lab}'",
            "list machines with GET /api/machines",
        )
    return gateway.inventory.row(machine)


async def _refresh(request: Request) -> None:
    """Reads the machine list at once, so the answer to a change shows the change."""
    gateway = gateway_of(request)
    machines = await asyncio.to_thread(gateway.backend.list_machines)
    gateway.inventory.replace(machines)


# -- lab and machines ---------------------------------------------------------------


async def get_lab(request: Request) -> Response:
    gateway = gateway_of(request)
    machines = gateway.inventory.machines.values()
    return JSONResponse(
        {
            "lab": gateway.lab,
            "domain": gateway.domain,
            "subnet": gateway.subnet,
            "gateway_ip": gateway.gateway_ip,
            "dashboard_port": gateway.dashboard_port,
            "machines": len(machines),
            "running": sum(m.state == "running" for m in machines),
        }
    )


async def list_machines(request: Request) -> Response:
    return JSONResponse(gateway_of(request).inventory.rows())


async def get_machine(request: Request) -> Response:
    return JSONResponse(_machine_row(request, _name(request)))


async def create_machine(request: Request) -> Response:
    body = await _body(request, "MachineCreate")
    machine = await asyncio.to_thread(gateway_of(request).backend.create, body)
    await _refresh(request)
    return JSONResponse(_machine_row(request, machine.name), status_code=201)


async def _act(request: Request, verb: str) -> Response:
    name = _name(request)
    machine = await asyncio.to_thread(gateway_of(request).backend.act, verb, name)
    await _refresh(request)
    return JSONResponse(_machine_row(request, machine.name))


async def start_machine(request: Request) -> Response:
    return await _act(request, "start")


async def stop_machine(request: Request) -> Response:
    return await _act(request, "stop")


async def restart_machine(request: Request) -> Response:
    return await _act(request, "restart")


async def remove_machine(request: Request) -> Response:
    name = _name(request)
    await asyncio.to_thread(gateway_of(request).backend.remove, name)
    await _refresh(request)
    return Response(status_code=204)


async def machine_logs(request: Request) -> Response:
    name, tail = _name(request), query_int(request, TAIL)
    text = await asyncio.to_thread(gateway_of(request).backend.logs, name, tail)
    return JSONResponse({"machine": name, "text": text})


async def follow_logs(request: Request) -> Response:
    """The log as server-sent events, one `log` event per chunk, until the page goes."""
    name, tail = _name(request), query_int(request, TAIL)
    gateway = gateway_of(request)
    chunks = await asyncio.to_thread(gateway.backend.follow_logs, name, tail)
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(256)
    loop = asyncio.get_running_loop()

    def pump() -> None:
        try:
            for chunk in chunks:
                asyncio.run_coroutine_threadsafe(queue.put(chunk), loop).result()
        except Exception as exc:  # the machine went away, or the page closed the stream
            log.debug("log stream of %s ended: %s", name, exc)
        finally:
            asyncio.run_coroutine_threadsafe(queue.put(None), loop)

    async def events() -> AsyncIterator[str]:
        worker = loop.run_in_executor(None, pump)
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(queue.get(), PING_SECONDS)
                except TimeoutError:
                    yield ": ping\n\n"
                    continue
                if chunk is None:
                    yield "event: end\ndata: {}\n\n"
                    return
                yield f"event: log\ndata: {json.dumps(chunk.decode(errors='replace'))}\n\n"
        finally:
            with contextlib.suppress(Exception):
                chunks.close()  # type: ignore[attr-defined]
            worker.cancel()

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


async def machine_traffic(request: Request) -> Response:
    name, minutes = _name(request), query_int(request, MINUTES)
    _machine_row(request, name)
    points = gateway_of(request).history.traffic(name, time.time() - minutes * 60)
    return JSONResponse({"machine": name, "points": points})


async def stream(request: Request) -> Response:
    """Machines (about once a second while anything changes) and events, as they come."""
    gateway = gateway_of(request)
    queue = gateway.hub.subscribe()

    async def events() -> AsyncIterator[str]:
        try:
            yield gateway.hub.message("machines", gateway.inventory.rows())
            while True:
                try:
                    yield await asyncio.wait_for(queue.get(), PING_SECONDS)
                except TimeoutError:
                    yield ": ping\n\n"
        finally:
            gateway.hub.unsubscribe(queue)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def terminal(websocket: WebSocket) -> None:
    """A shell in the machine: binary frames carry the terminal's bytes both ways, a text
    frame {"resize": [cols, rows]} resizes it."""
    gateway = gateway_of(websocket)  # type: ignore[arg-type]
    name = str(websocket.path_params["name"])
    cols = _int_param(websocket.query_params.get("cols"), 80)
    rows = _int_param(websocket.query_params.get("rows"), 24)
    await websocket.accept()
    try:
        shell = await gateway.backend.open_terminal(name, cols, rows)
    except OneboxError as exc:
        await websocket.send_text(json.dumps({"error": exc.message, "fix": exc.fix}))
        await websocket.close(4000 + http_status(exc))
        return
    log.info("Terminal opened into machine %s", name)
    await _bridge(websocket, shell)


def _int_param(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() and len(text) < 5 else default


async def _bridge(websocket: WebSocket, shell: Shell) -> None:
    async def to_browser() -> None:
        while data := await shell.read():
            await websocket.send_bytes(data)
        await websocket.close(1000)

    async def to_shell() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes"):
                await shell.write(message["bytes"])
            elif message.get("text"):
                await _control(shell, message["text"])

    tasks = [asyncio.create_task(to_browser()), asyncio.create_task(to_shell())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    except WebSocketDisconnect:
        pass
    finally:
        for task in tasks:
            task.cancel()
        shell.close()


async def _control(shell: Shell, text: str) -> None:
    try:
        message = json.loads(text)
    except ValueError:
        await shell.write(text.encode())
        return
    if isinstance(message, dict) and isinstance(message.get("resize"), list):
        cols, rows = (message["resize"] + [80, 24])[:2]
        if isinstance(cols, int) and isinstance(rows, int):
            await shell.resize(cols, rows)
    elif isinstance(message, dict) and isinstance(message.get("input"), str):
        await shell.write(message["input"].encode())


# -- images, networks, events ---------------------------------------------------------


async def list_images(request: Request) -> Response:
    return JSONResponse(await asyncio.to_thread(gateway_of(request).backend.images))


async def list_networks(request: Request) -> Response:
    return JSONResponse(await asyncio.to_thread(gateway_of(request).backend.networks))


async def list_events(request: Request) -> Response:
    return JSONResponse(gateway_of(request).history.events(query_int(request, LIMIT)))


# -- templates, launches and stacks ---------------------------------------------------


async def list_templates(request: Request) -> Response:
    return JSONResponse(await asyncio.to_thread(gateway_of(request).backend.templates))


async def launch_template(request: Request) -> Response:
    """Checks the request, then launches in the background and answers with the launch."""
    name = _name(request, "template name")
    body = await _body(request, "LaunchCreate")
    stack, settings = str(body["stack"]), dict(body.get("settings") or {})
    gateway = gateway_of(request)
    await asyncio.to_thread(gateway.backend.check_launch, name, stack, settings)
    command = f"onebox template secrets {stack} --lab {gateway.lab}"

    def work(report: launches.Report) -> dict[str, Any]:
        made = gateway.backend.launch(name, stack, settings, report)
        return {**made, "secrets_command": command}

    launch = gateway.launches.start(name, stack, work)
    return JSONResponse(
        launch.view(), status_code=202, headers={"Location": f"/api/launches/{launch.id}"}
    )


def _launch(request: Request) -> launches.Launch:
    launch_id = str(request.path_params["launch_id"])
    validate(launch_id, {"type": "string", "pattern": r"^[0-9a-f]{12}$"}, "launch id")
    return gateway_of(request).launches.get(launch_id)


async def list_launches(request: Request) -> Response:
    return JSONResponse([launch.view() for launch in gateway_of(request).launches.recent()])


async def get_launch(request: Request) -> Response:
    return JSONResponse(_launch(request).view(reveal=True))


async def follow_launch(request: Request) -> Response:
    return StreamingResponse(
        launches.follow(_launch(request), PING_SECONDS),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def list_stacks(request: Request) -> Response:
    return JSONResponse(await asyncio.to_thread(gateway_of(request).backend.stacks))


async def remove_stack(request: Request) -> Response:
    stack = str(request.path_params["stack"])
    validate(stack, {"type": "string", "pattern": STACK_PATTERN}, "stack name")
    volumes = query_flag(request, VOLUMES)
    removed = await asyncio.to_thread(gateway_of(request).backend.remove_stack, stack, volumes)
    await _refresh(request)
    return JSONResponse({"stack": stack, "removed": removed})


# -- sessions and tokens -------------------------------------------------------------


async def create_session(request: Request) -> Response:
    body = await _body(request, "Login")
    gateway = gateway_of(request)
    if gateway.throttle.blocked():
        return error_response(429, "Too many failed logins", "wait a minute, then retry")
    admin = await asyncio.to_thread(gateway.admins.check, body["username"], body["password"])
    if admin is None:
        gateway.throttle.failed()
        return error_response(
            401,
            "Wrong user name or password",
            "print a new password with `onebox dashboard password --reset`",
        )
    value, session = gateway.sessions.issue(admin)
    response = JSONResponse(
        {"user": session.user, "csrf": session.csrf, "expires": session.expires}
    )
    set_session_cookie(response, gateway.cookie, value, gateway.sessions.seconds)
    return response


def set_session_cookie(response: Response, name: str, value: str, seconds: float) -> None:
    response.set_cookie(
        name, value, max_age=int(seconds), httponly=True, samesite="strict", path="/"
    )


async def delete_session(request: Request) -> Response:
    response = Response(status_code=204)
    response.delete_cookie(gateway_of(request).cookie, path="/")
    return response


async def list_tokens(request: Request) -> Response:
    return JSONResponse(gateway_of(request).tokens.list())


async def create_token(request: Request) -> Response:
    body = await _body(request, "TokenCreate")
    made = gateway_of(request).tokens.create(body["name"])
    log.info("API token %s made by %s", made["id"], principal_of(request).name)
    return JSONResponse(made, status_code=201)


async def delete_token(request: Request) -> Response:
    token_id = str(request.path_params["token_id"])
    if not gateway_of(request).tokens.revoke(token_id):
        raise NotFound(f"API token '{token_id}' does not exist", "list them: GET /api/tokens")
    return Response(status_code=204)


async def openapi(request: Request) -> Response:
    spec = document(OPERATIONS, onebox.__version__ if hasattr(onebox, "__version__") else "0.1.0")
    spec["components"]["securitySchemes"]["session"]["name"] = gateway_of(request).cookie
    return JSONResponse(spec)


def _op(
    method: str,
    path: str,
    handler: Any,
    summary: str,
    tag: str,
    responses: dict[int, str | None],
    **extra: Any,
) -> Operation:
    return Operation(method, path, summary, tag, handler, responses, **extra)


M = "/api/machines/{name}"
OPERATIONS: list[Operation] = [
    _op("GET", "/openapi.json", openapi, "This document", "meta", {200: None}, public=True),
    _op("GET", "/api/lab", get_lab, "The lab and its gateway", "lab", {200: "Lab"}),
    _op(
        "GET",
        "/api/machines",
        list_machines,
        "Every machine, with live numbers",
        "machines",
        {200: "MachineList"},
    ),
    _op(
        "POST",
        "/api/machines",
        create_machine,
        "Create and start a machine",
        "machines",
        {201: "Machine"},
        body="MachineCreate",
    ),
    _op("GET", M, get_machine, "One machine", "machines", {200: "Machine"}),
    _op(
        "DELETE",
        M,
        remove_machine,
        "Remove a machine and free its address",
        "machines",
        {204: None},
    ),
    _op("POST", f"{M}/start", start_machine, "Start a machine", "machines", {200: "Machine"}),
    _op("POST", f"{M}/stop", stop_machine, "Stop a machine", "machines", {200: "Machine"}),
    _op("POST", f"{M}/restart", restart_machine, "Restart a machine", "machines", {200: "Machine"}),
    _op(
        "GET",
        f"{M}/logs",
        machine_logs,
        "The end of a machine's output",
        "machines",
        {200: "Logs"},
        query=(TAIL,),
    ),
    _op(
        "GET",
        f"{M}/logs/follow",
        follow_logs,
        "A machine's output as it comes (SSE)",
        "machines",
        {200: None},
        query=(TAIL,),
        media="text/event-stream",
    ),
    _op(
        "GET",
        f"{M}/traffic",
        machine_traffic,
        "Traffic and load history",
        "machines",
        {200: "Traffic"},
        query=(MINUTES,),
    ),
    _op(
        "GET",
        f"{M}/terminal",
        terminal,
        "A shell with a TTY (websocket)",
        "machines",
        {101: None},
        kind="websocket",
        media="application/octet-stream",
        notes="Upgrade to a websocket. Binary frames carry terminal bytes both ways; a text "
        'frame {"resize": [cols, rows]} resizes. Query: cols, rows.',
    ),
    _op(
        "GET",
        "/api/stream",
        stream,
        "Live machines and events (SSE)",
        "lab",
        {200: None},
        media="text/event-stream",
        notes="Events: `machines` (the full list, about once a second while anything "
        "changes) and `event` (created, started, died, removed).",
    ),
    _op(
        "GET",
        "/api/events",
        list_events,
        "The lab's events, newest first",
        "lab",
        {200: "EventList"},
        query=(LIMIT,),
    ),
    _op(
        "GET",
        "/api/images",
        list_images,
        "Images on the engine, and their users",
        "lab",
        {200: "ImageList"},
    ),
    _op(
        "GET", "/api/networks", list_networks, "Networks on the engine", "lab", {200: "NetworkList"}
    ),
    _op(
        "GET",
        "/api/templates",
        list_templates,
        "The template shelf: each template's settings and services",
        "templates",
        {200: "TemplateList"},
    ),
    _op(
        "POST",
        "/api/templates/{name}/launch",
        launch_template,
        "Launch a template as a stack, in the background",
        "templates",
        {202: "Launch"},
        body="LaunchCreate",
        notes="Answers at once with the launch; follow it with GET /api/launches/{id}/stream. "
        "An unknown template or setting, a bad or taken stack name, and an image that "
        "cannot be had are refused here; what fails later is the launch's `error`.",
    ),
    _op(
        "GET",
        "/api/launches",
        list_launches,
        "Recent launches, newest first (secrets left out)",
        "templates",
        {200: "LaunchList"},
    ),
    _op(
        "GET",
        "/api/launches/{launch_id}",
        get_launch,
        "One launch: its progress, then its result or error",
        "templates",
        {200: "Launch"},
        notes="The result's generated secrets are shown to the first answer that has them; "
        "later ones leave them out (the result's secrets_command shows them again).",
    ),
    _op(
        "GET",
        "/api/launches/{launch_id}/stream",
        follow_launch,
        "A launch's progress as it comes (SSE)",
        "templates",
        {200: None},
        media="text/event-stream",
        notes="Events: `line` (a progress line; past ones first) and one `done` (the launch, "
        "state done or failed), after which the stream ends.",
    ),
    _op("GET", "/api/stacks", list_stacks, "The lab's stacks", "templates", {200: "StackList"}),
    _op(
        "DELETE",
        "/api/stacks/{stack}",
        remove_stack,
        "Remove a stack's machines (and with volumes=true, its data and secrets)",
        "templates",
        {200: "StackRemoved"},
        query=(VOLUMES,),
    ),
    _op(
        "POST",
        "/api/session",
        create_session,
        "Log in; sets the session cookie",
        "auth",
        {200: "SessionInfo", 401: "Error", 429: "Error"},
        body="Login",
        public=True,
    ),
    _op("DELETE", "/api/session", delete_session, "Log out", "auth", {204: None}),
    _op(
        "GET",
        "/api/tokens",
        list_tokens,
        "API tokens (without their secrets)",
        "auth",
        {200: "TokenList"},
    ),
    _op(
        "POST",
        "/api/tokens",
        create_token,
        "Make an API token; shown once",
        "auth",
        {201: "NewToken"},
        body="TokenCreate",
    ),
    _op(
        "DELETE", "/api/tokens/{token_id}", delete_token, "Revoke an API token", "auth", {204: None}
    ),
]
