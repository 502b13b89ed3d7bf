"""`onebox share`: publish the lab's entry points on the LAN for the client networks the
user allows, or (`--off`) on loopback only again."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from onebox.cli.output import JsonOption, LabOption, emit_json, out, report, user_errors
from onebox.engine import connect
from onebox.labs import lab as labs
from onebox.labs import share as sharing

ENTRY_POINTS = (
    ("http", "HTTP"),
    ("https", "HTTPS"),
    ("proxy", "HTTP proxy + PAC"),
    ("socks", "SOCKS5"),
    ("dns", "DNS"),
    ("ssh", "SSH"),
)


def share(
    lab: LabOption = "default",
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            help="Client network (CIDR) that may use the lab; repeat for more. "
            "Default: the networks this host is on.",
        ),
    ] = None,
    off: Annotated[bool, typer.Option("--off", help="Publish on loopback only again.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Share the lab on the LAN: its URLs, proxies, DNS and SSH on every host address."""
    from onebox.images import gateway

    with user_errors():
        engine = connect()
        image = gateway.ensure(engine, report)
        test = os.environ.get("ONEBOX_TEST") == "1"
        if off:
            result, changed = sharing.unshare(engine, lab, report, image, test=test)
        else:
            result, changed = sharing.share(engine, lab, allow or [], report, image, test=test)
        if json_out:
            emit_json({**result.as_dict(), "changed": changed})
            return
        _print_shared(result)


def _print_shared(lab: labs.Lab) -> None:
    g = lab.as_dict()["gateway"]
    if lab.bind == sharing.LOOPBACK:
        out.print(f"Lab '{lab.name}' is on loopback only ({lab.bind}).")
        return
    allowed = ", ".join(lab.allow) or "loopback only"
    out.print(
        f"Lab '{lab.name}' is shared on {lab.bind}; forward-proxy clients allowed "
        f"from {allowed}."
    )
    for key, title in ENTRY_POINTS:
        out.print(f"  {title:<18} port {g.get(f'{key}_port')}")
    out.print(
        f"LAN users set the proxy configuration URL http://HOST:{g.get('proxy_port')}"
        "/proxy.pac in their browser (HOST: this computer's LAN address), then open "
        f"http://NAME.{lab.domain}/. `onebox share --off` ends sharing."
    )
