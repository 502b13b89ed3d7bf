"""The gateway's web application: the API routes and the dashboard's pages behind one
guard (Host, login, CSRF), and the one handler that turns onebox errors into HTTP
statuses by the table in onebox.errors."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from onebox.api import auth
from onebox.api.backend import Backend
from onebox.api.inventory import Hub, Inventory
from onebox.api.launches import Launches
from onebox.api.openapi import Operation
from onebox.errors import OneboxError, http_status
from onebox.metrics.history import History

log = logging.getLogger(__name__)

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
PUBLIC_PATHS = {"/login", "/openapi.json", "/api/session", "/healthz"}
PUBLIC_PREFIXES = ("/static/",)


@dataclass
class Gateway:
    """Everything a request handler reads, kept on app.state.gateway."""

    lab: str
    domain: str
    subnet: str
    gateway_ip: str
    dashboard_port: int
    backend: Backend
    inventory: Inventory
    history: History
    admins: auth.Admins
    sessions: auth.Sessions
    tokens: auth.Tokens
    hosts: auth.HostPolicy
    hub: Hub = field(default_factory=Hub)
    launches: Launches = field(default_factory=Launches)
    throttle: auth.Throttle = field(default_factory=auth.Throttle)

    @property
    def cookie(self) -> str:
        """Per lab: cookies ignore ports, and two labs share 127.0.0.1."""
        return f"onebox_session_{self.lab.replace('-', '_')}"


@dataclass(frozen=True)
class Principal:
    kind: str  # "session" or "token"
    name: str
    session: auth.Session | None = None


def gateway_of(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


def principal_of(request: Request) -> Principal:
    return request.scope["state"]["principal"]  # type: ignore[no-any-return]


def error_response(status: int, message: str, fix: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "fix": fix}, status_code=status)


async def onebox_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OneboxError)
    status = http_status(exc)
    if status >= 500:
        log.warning("%s %s failed: %s", request.method, request.url.path, exc.message)
    return error_response(status, exc.message, exc.fix)


class Guard:
    """Refuses foreign Host names, finds who is asking (session cookie or bearer token),
    sends strangers to the login page, and checks CSRF on changes made by browsers."""

    def __init__(self, app: ASGIApp, gateway: Callable[[], Gateway]) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        gateway = self.gateway()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers, gateway)
        if refusal is not None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4403})
                return
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, headers: dict[str, str], gateway: Gateway) -> Response | None:
        if not gateway.hosts.allows(headers.get("host", "")):
            return PlainTextResponse(
                f"This is the onebox gateway of lab '{gateway.lab}'; it answers only to its "
                f"own names: {gateway.hosts.described()}\n",
                status_code=421,
            )
        method = scope.get("method", "GET")
        origin = headers.get("origin")
        browser_write = method in UNSAFE or scope["type"] == "websocket"
        if browser_write and origin and not gateway.hosts.allows_origin(origin):
            return error_response(
                403,
                "Cross-site request refused",
                "use the dashboard from the gateway's own address",
            )
        principal = self._principal(headers, gateway)
        scope.setdefault("state", {})["principal"] = principal
        path = scope["path"]
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return None
        if principal is None:
            return self._unauthenticated(path, scope)
        if principal.session and method in UNSAFE and path.startswith("/api/"):
            sent = headers.get("x-csrf-token", "")
            if not hmac.compare_digest(sent.encode(), principal.session.csrf.encode()):
                return error_response(
                    403,
                    "The request lacks the session's CSRF token",
                    "send the csrf value from POST /api/session as the "
                    "X-CSRF-Token header, or use an API token",
                )
        if scope["type"] == "websocket" and principal.session and not origin:
            return error_response(403, "A browser websocket must send its Origin")
        return None

    @staticmethod
    def _principal(headers: dict[str, str], gateway: Gateway) -> Principal | None:
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            token_id = gateway.tokens.verify(bearer[7:].strip())
            return Principal("token", token_id) if token_id else None
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is no session
            return None
        morsel = cookies.get(gateway.cookie)
        if morsel is None:
            return None
        session = gateway.sessions.read(morsel.value, gateway.admins.current())
        return Principal("session", session.user, session) if session else None

    @staticmethod
    def _unauthenticated(path: str, scope: Scope) -> Response:
        if path.startswith("/api/") or scope["type"] == "websocket":
            return error_response(
                401,
                "Not logged in",
                "log in with POST /api/session, or send an API token as "
                "`Authorization: Bearer obt_...`",
            )
        query = scope.get("query_string", b"").decode("latin-1")
        target = path + (f"?{query}" if query else "")
        return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


ExceptionHandler = Callable[[Request, Exception], Any]


def build(
    gateway: Gateway,
    operations: list[Operation],
    pages: list[BaseRoute],
    handlers: dict[type[Exception], ExceptionHandler] | None = None,
) -> Starlette:
    routes: list[BaseRoute] = []
    for op in operations:
        if op.kind == "websocket":
            routes.append(WebSocketRoute(op.path, op.handler))
        else:
            routes.append(Route(op.path, op.handler, methods=[op.method]))
    app = Starlette(
        routes=routes + pages, exception_handlers={OneboxError: onebox_error, **(handlers or {})}
    )
    app.state.gateway = gateway
    app.add_middleware(Guard, gateway=lambda: app.state.gateway)
    return app


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))
