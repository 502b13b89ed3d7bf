"""The API's contract: every route is declared once as an Operation, and both the
router and the OpenAPI document are made from those declarations, so the document
cannot leave a route out. Request bodies are checked against the same schemas."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from onebox.errors import InvalidInput

Handler = Callable[[Request], Awaitable[Response]]

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
STACK_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$"  # as templates.compose allows
IMAGE_PATTERN = r"^[a-z0-9][a-z0-9._/-]{0,200}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _string(**extra: Any) -> dict[str, Any]:
    return {"type": "string", **extra}


def _integer(**extra: Any) -> dict[str, Any]:
    return {"type": "integer", **extra}


def _number() -> dict[str, Any]:
    return {"type": "number"}


def _object(
    properties: dict[str, Any], required: list[str] | None = None, closed: bool = True
) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": required or list(properties),
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


def _array(items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "array", "items": items, **extra}


MACHINE_FIELDS: dict[str, Any] = {
    "name": _string(),
    "ip": _string(),
    "fqdn": _string(),
    "url": _string(),
    "state": _string(),
    "image": _string(),
    "id": _string(),
    "started_at": _string(),
    "web_port": _integer(),
    "urls": _array(_string()),
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": _object({"error": _string(), "fix": _string(nullable=True)}),
    "Lab": _object(
        {
            "lab": _string(),
            "domain": _string(),
            "subnet": _string(),
            "gateway_ip": _string(),
            "dashboard_port": _integer(),
            "machines": _integer(),
            "running": _integer(),
        }
    ),
    "Machine": _object(
        {
            **MACHINE_FIELDS,
            "labels": {"type": "object", "additionalProperties": _string()},
            "cpu_percent": _number(),
            "memory_bytes": _integer(),
            "memory_limit": _integer(),
            "rx_bytes": _integer(),
            "tx_bytes": _integer(),
            "rx_rate": _number(),
            "tx_rate": _number(),
            "spark": _array(_number()),
        }
    ),
    "MachineList": _array(ref("Machine")),
    "MachineCreate": _object(
        {
            "name": _string(pattern=NAME_PATTERN, maxLength=63),
            "image": _string(pattern=IMAGE_PATTERN, maxLength=255),
            "ip": _string(format="ipv4"),
            "command": _array(_string(maxLength=4096), maxItems=64),
            "web_port": _integer(minimum=1, maximum=65535),
        },
        required=["name", "image"],
    ),
    "Logs": _object({"machine": _string(), "text": _string()}),
    "TrafficPoint": _object(
        {
            "t": _integer(),
            "rx_bytes": _integer(),
            "tx_bytes": _integer(),
            "rx_rate": _number(),
            "tx_rate": _number(),
            "cpu_percent": _number(),
            "memory_bytes": _integer(),
        }
    ),
    "Traffic": _object({"machine": _string(), "points": _array(ref("TrafficPoint"))}),
    "Event": _object(
        {
            "id": _integer(),
            "t": _number(),
            "machine": _string(),
            "action": _string(),
            "detail": _string(),
        }
    ),
    "EventList": _array(ref("Event")),
    "Image": _object(
        {
            "id": _string(),
            "tags": _array(_string()),
            "size": _integer(),
            "created": _integer(),
            "used_by": _array(_string()),
        }
    ),
    "ImageList": _array(ref("Image")),
    "Network": _object(
        {
            "id": _string(),
            "name": _string(),
            "driver": _string(),
            "subnets": _array(_string()),
            "lab": _string(),
            "containers": _integer(),
        }
    ),
    "NetworkList": _array(ref("Network")),
    "Login": _object({"username": _string(maxLength=128), "password": _string(maxLength=1024)}),
    "SessionInfo": _object({"user": _string(), "csrf": _string(), "expires": _number()}),
    "TokenCreate": _object({"name": _string(minLength=1, maxLength=64)}),
    "Token": _object({"id": _string(), "name": _string(), "created": _number()}),
    "NewToken": _object(
        {"id": _string(), "name": _string(), "created": _number(), "token": _string()}
    ),
    "TokenList": _array(ref("Token")),
    "Template": _object(
        {
            "name": _string(),
            "description": _string(),
            "settings": {"type": "object", "additionalProperties": _string()},
            "secrets": _array(_string()),
            "url_service": _string(nullable=True),
            "services": _array(_string()),
            "notes": _string(),
        }
    ),
    "TemplateList": _array(ref("Template")),
    "LaunchCreate": _object(
        {
            "stack": _string(pattern=STACK_PATTERN, maxLength=32),
            "settings": {
                "type": "object",
                "additionalProperties": _string(maxLength=1024),
                "maxProperties": 64,
            },
        },
        required=["stack"],
    ),
    "StackMachine": _object(
        {**MACHINE_FIELDS, "service": _string()}, required=list(MACHINE_FIELDS)
    ),
    "LaunchResult": _object(
        {
            "template": _string(),
            "stack": _string(),
            "url": _string(nullable=True),
            "machines": _array(ref("StackMachine")),
            "secrets": {"type": "object", "additionalProperties": _string()},
            "kept_secrets": _array(_string()),
            "secrets_command": _string(),
            "notes": _string(),
        }
    ),
    "Launch": _object(
        {
            "id": _string(),
            "template": _string(),
            "stack": _string(),
            "started": _number(),
            "state": _string(enum=["running", "done", "failed"]),
            "lines": _array(_string()),
            "result": {**ref("LaunchResult"), "nullable": True},
            "error": {**ref("Error"), "nullable": True},
        }
    ),
    "LaunchList": _array(ref("Launch")),
    "Stack": _object(
        {"name": _string(), "url": _string(nullable=True), "machines": _array(ref("StackMachine"))}
    ),
    "StackList": _array(ref("Stack")),
    "StackRemoved": _object({"stack": _string(), "removed": _integer()}),
}

PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "name": _string(pattern=NAME_PATTERN, maxLength=63),
    "stack": _string(pattern=STACK_PATTERN, maxLength=32),
    "launch_id": _string(pattern=r"^[0-9a-f]{12}$"),
}


@dataclass(frozen=True)
class Query:
    name: str
    minimum: int
    maximum: int
    default: int
    description: str


@dataclass(frozen=True)
class Flag:
    """A true/false query parameter, false when left out."""

    name: str
    description: str


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    handler: Handler
    responses: dict[int, str | None]  # status -> schema name (None: no JSON body)
    body: str | None = None
    query: tuple[Query | Flag, ...] = ()
    public: bool = False
    media: str = "application/json"  # of the success response
    kind: str = "http"  # or "websocket"
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


ERROR_STATUSES = {
    401: "Not logged in, or the token is unknown",
    403: "Refused: cross-site request or missing CSRF token",
    404: "No such machine, token or object",
    409: "Clashes with something that exists",
    421: "The Host header is not one of the gateway's names",
    422: "The request is malformed",
    503: "The Docker engine does not answer",
}


def document(operations: list[Operation], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "onebox gateway API",
            "version": version,
            "description": "Machines, images, networks, events and traffic of one "
            "onebox lab. Log in with POST /api/session (a cookie; send "
            "its csrf value as X-CSRF-Token on changes) or send an API "
            "token as `Authorization: Bearer obt_...`.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "onebox_session"},
            },
        },
    }


def _operation(op: Operation) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "operationId": op.handler.__name__,
        "summary": op.summary,
        "tags": [op.tag],
        "responses": {},
    }
    if op.notes:
        spec["description"] = op.notes
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": PATH_PARAMETERS.get(name, _string(maxLength=64)),
        }
        for name in re.findall(r"{(\w+)}", op.path)
    ]
    parameters += [
        {
            "name": q.name,
            "in": "query",
            "required": False,
            "description": q.description,
            "schema": {"type": "boolean", "default": False}
            if isinstance(q, Flag)
            else _integer(minimum=q.minimum, maximum=q.maximum, default=q.default),
        }
        for q in op.query
    ]
    if parameters:
        spec["parameters"] = parameters
    if op.body:
        spec["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(op.body)}},
        }
    for status, schema in op.responses.items():
        spec["responses"][str(status)] = _response(status, schema, op.media)
    statuses = [422] if (op.body or op.query) else []
    if not op.public:
        statuses += [401, 403]
    if "{" in op.path or op.method != "GET":
        statuses += [404, 409]
    for status in sorted(set(statuses) | {421, 503}):
        spec["responses"].setdefault(str(status), _response(status, "Error", "application/json"))
    spec["security"] = [] if op.public else [{"bearer": []}, {"session": []}]
    return {**spec, **op.extra}


def _response(status: int, schema: str | None, media: str) -> dict[str, Any]:
    described = ERROR_STATUSES.get(status, "Done")
    if schema is None:
        if media == "application/json":
            return {"description": described}
        return {"description": described, "content": {media: {"schema": _string()}}}
    return {"description": described, "content": {"application/json": {"schema": ref(schema)}}}


# -- checking requests against the schemas ------------------------------------------


def validate(value: Any, schema: dict[str, Any], where: str = "body") -> None:
    """Raises InvalidInput naming the first part of `value` the schema refuses."""
    if "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[1]]
    kind = schema.get("type")
    checks: dict[str, Callable[[Any, dict[str, Any], str], None]] = {
        "object": _check_object,
        "array": _check_array,
        "string": _check_string,
        "integer": _check_integer,
        "number": _check_number,
    }
    if kind in checks:
        checks[kind](value, schema, where)


def _refuse(where: str, why: str) -> InvalidInput:
    return InvalidInput(f"The request's {where} {why}", "see the request schema in /openapi.json")


def _check_object(value: Any, schema: dict[str, Any], where: str) -> None:
    if not isinstance(value, dict):
        raise _refuse(where, "is not a JSON object")
    properties = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            raise _refuse(where, f"lacks '{name}'")
    if len(value) > schema.get("maxProperties", len(value)):
        raise _refuse(where, f"has more than {schema['maxProperties']} fields")
    for name, item in value.items():
        if name in properties:
            validate(item, properties[name], f"{where}.{name}")
            continue
        extra = schema.get("additionalProperties")
        if extra is False:
            raise _refuse(where, f"has an unknown field '{name}'")
        if isinstance(extra, dict):
            validate(item, extra, f"{where}.{name}")


def _check_array(value: Any, schema: dict[str, Any], where: str) -> None:
    if not isinstance(value, list):
        raise _refuse(where, "is not a list")
    if len(value) > schema.get("maxItems", len(value)):
        raise _refuse(where, f"has more than {schema['maxItems']} items")
    for index, item in enumerate(value):
        validate(item, schema["items"], f"{where}[{index}]")


def _check_string(value: Any, schema: dict[str, Any], where: str) -> None:
    if not isinstance(value, str):
        raise _refuse(where, "is not a string")
    if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
        raise _refuse(where, "has the wrong length")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        raise _refuse(where, f"does not match {schema['pattern']}")
    if schema.get("format") == "ipv4":
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise _refuse(where, "is not an IPv4 address") from None


def _check_integer(value: Any, schema: dict[str, Any], where: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _refuse(where, "is not an integer")
    _check_range(value, schema, where)


def _check_number(value: Any, schema: dict[str, Any], where: str) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _refuse(where, "is not a number")
    _check_range(value, schema, where)


def _check_range(value: float, schema: dict[str, Any], where: str) -> None:
    if value < schema.get("minimum", value) or value > schema.get("maximum", value):
        raise _refuse(where, f"is outside {schema.get('minimum')}..{schema.get('maximum')}")


def query_int(request: Request, query: Query) -> int:
    text = request.query_params.get(query.name)
    if text is None:
        return query.default
    if not re.fullmatch(r"-?\d{1,12}", text):
        raise _refuse(f"parameter '{query.name}'", "is not an integer")
    value = int(text)
    _check_range(
        value, {"minimum": query.minimum, "maximum": query.maximum}, f"parameter '{query.name}'"
    )
    return value


def query_flag(request: Request, flag: Flag) -> bool:
    text = request.query_params.get(flag.name, "false").lower()
    if text not in ("true", "false", "1", "0"):
        raise _refuse(f"parameter '{flag.name}'", "is not true or false")
    return text in ("true", "1")
