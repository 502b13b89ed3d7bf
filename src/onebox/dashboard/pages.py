"""The dashboard's pages: rendered on the server from the gateway's memory, then kept
live by static/app.js over the API's event stream. Form posts check the session's CSRF
token here; the API's guard checks it for script calls."""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from onebox.api.app import Gateway, gateway_of
from onebox.api.inventory import uptime_seconds
from onebox.api.openapi import validate
from onebox.api.routes import set_session_cookie
from onebox.errors import OneboxError

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
PRELOGIN = "onebox_login"


def _fmt_bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _fmt_age(seconds: int | None) -> str:
    if seconds is None:
        return "–"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _fmt_time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


templates.env.filters.update(bytes=_fmt_bytes, age=_fmt_age, time=_fmt_time)


def _page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    gateway = gateway_of(request)
    principal = request.scope["state"].get("principal")
    session = principal.session if principal else None
    base = {
        "lab": gateway.lab,
        "domain": gateway.domain,
        "csrf": session.csrf if session else "",
        "user": principal.name if principal else "",
        "nav": name.removesuffix(".html"),
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)


def _spark(values: list[float], width: int = 96, height: int = 22) -> str:
    """The points of an SVG polyline; app.js draws the same from live data."""
    if not values:
        return ""
    top = max(max(values), 1.0)
    step = width / max(len(values) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{height - 1 - v / top * (height - 2):.1f}" for i, v in enumerate(values)
    )


def _uptime(row: dict[str, Any], now: datetime) -> str:
    return _fmt_age(uptime_seconds(row["started_at"], now))


templates.env.globals.update(spark=_spark)


async def machines_page(request: Request) -> Response:
    gateway = gateway_of(request)
    now = datetime.now(UTC)
    rows = gateway.inventory.rows()
    for row in rows:
        row["uptime"] = _uptime(row, now)
    return _page(request, "machines.html", rows=rows, subnet=gateway.subnet)


async def machine_page(request: Request) -> Response:
    gateway = gateway_of(request)
    machine = gateway.inventory.get(str(request.path_params["name"]))
    if machine is None:
        return _page(request, "missing.html", what=f"Machine '{request.path_params['name']}'")
    row = gateway.inventory.row(machine)
    row["uptime"] = _uptime(row, datetime.now(UTC))
    events = gateway.history.events(limit=20, machine=machine.name)
    return _page(request, "machine.html", m=row, events=events)


async def terminal_page(request: Request) -> Response:
    machine = gateway_of(request).inventory.get(str(request.path_params["name"]))
    if machine is None:
        return _page(request, "missing.html", what=f"Machine '{request.path_params['name']}'")
    return _page(request, "terminal.html", m=machine)


async def new_machine(request: Request) -> Response:
    """The create form without scripts: posts here, comes back to the machines page."""
    form = await request.form()
    _check_form_csrf(request, str(form.get("csrf", "")))
    body: dict[str, Any] = {
        "name": str(form.get("name", "")).strip(),
        "image": str(form.get("image", "")).strip(),
    }
    if str(form.get("ip", "")).strip():
        body["ip"] = str(form["ip"]).strip()
    try:
        validate(body, {"$ref": "#/components/schemas/MachineCreate"})
        await asyncio.to_thread(gateway_of(request).backend.create, body)
    except OneboxError as exc:
        return PlainTextResponse(f"{exc.message}\n{exc.fix or ''}\n", status_code=422)
    return RedirectResponse("/", status_code=303)


def _check_form_csrf(request: Request, sent: str) -> None:
    principal = request.scope["state"].get("principal")
    expected = principal.session.csrf if principal and principal.session else ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PermissionError("csrf")


async def images_page(request: Request) -> Response:
    images = await asyncio.to_thread(gateway_of(request).backend.images)
    return _page(request, "images.html", images=images)


async def networks_page(request: Request) -> Response:
    networks = await asyncio.to_thread(gateway_of(request).backend.networks)
    return _page(request, "networks.html", networks=networks)


async def templates_page(request: Request) -> Response:
    backend = gateway_of(request).backend
    shelf = await asyncio.to_thread(backend.templates)
    stacks = await asyncio.to_thread(backend.stacks)
    return _page(request, "templates.html", shelf=shelf, stacks=stacks)


async def events_page(request: Request) -> Response:
    return _page(request, "events.html", events=gateway_of(request).history.events(limit=200))


async def login_page(request: Request) -> Response:
    nonce = request.cookies.get(PRELOGIN) or secrets.token_urlsafe(18)
    response = _page(
        request,
        "login.html",
        nonce=nonce,
        error="",
        next=_safe_next(request.query_params.get("next", "/")),
    )
    response.set_cookie(PRELOGIN, nonce, httponly=True, samesite="strict", path="/login")
    return response


async def login(request: Request) -> Response:
    gateway: Gateway = gateway_of(request)
    form = await request.form()
    nonce = request.cookies.get(PRELOGIN, "")
    target = _safe_next(str(form.get("next", "/")))

    def again(error: str, status: int) -> Response:
        return _page(
            request, "login.html", nonce=nonce, error=error, next=target, status_code=status
        )

    if not nonce or not hmac.compare_digest(nonce.encode(), str(form.get("nonce", "")).encode()):
        return again("The login form expired; try again.", 403)
    if gateway.throttle.blocked():
        return again("Too many failed logins; wait a minute.", 429)
    admin = await asyncio.to_thread(
        gateway.admins.check, str(form.get("username", "")), str(form.get("password", ""))
    )
    if admin is None:
        gateway.throttle.failed()
        return again("Wrong user name or password.", 401)
    value, _ = gateway.sessions.issue(admin)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, gateway.cookie, value, gateway.sessions.seconds)
    log.info("%s logged in to the dashboard", admin.username)
    return response


async def logout(request: Request) -> Response:
    form = await request.form()
    _check_form_csrf(request, str(form.get("csrf", "")))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(gateway_of(request).cookie, path="/")
    return response


def _safe_next(target: str) -> str:
    """Only paths on this site: a login must not bounce anyone elsewhere."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


async def forbidden(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(
        "The form's CSRF token is missing or stale; reload the page.\n", status_code=403
    )


HANDLERS: dict[type[Exception], Any] = {PermissionError: forbidden}


def routes() -> list[BaseRoute]:
    return [
        Route("/", machines_page),
        Route("/machines/{name}", machine_page),
        Route("/machines/{name}/terminal", terminal_page),
        Route("/new", new_machine, methods=["POST"]),
        Route("/images", images_page),
        Route("/networks", networks_page),
        Route("/events", events_page),
        Route("/templates", templates_page),
        Route("/login", login_page),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/healthz", healthz),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
