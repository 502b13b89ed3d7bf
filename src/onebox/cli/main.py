"""`onebox`: labs (`up`, `down`, `destroy`, `status`) and the sub-command families."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from onebox.cli import ca as ca_cli
from onebox.cli import compose as compose_cli
from onebox.cli import dashboard as dashboard_cli
from onebox.cli import machine as machine_cli
from onebox.cli import share as share_cli
from onebox.cli import ssh as ssh_cli
from onebox.cli import stack as stack_cli
from onebox.cli import template as template_cli
from onebox.cli.output import JsonOption, LabOption, emit_json, err, out, report, table, user_errors
from onebox.engine import connect
from onebox.errors import InvalidInput
from onebox.labs import lab as labs
from onebox.labs import share as sharing

app = typer.Typer(
    help="onebox: a cloud on one computer.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(machine_cli.app, name="machine")
app.add_typer(dashboard_cli.app, name="dashboard")
app.add_typer(ca_cli.app, name="ca")
app.command()(share_cli.share)
app.add_typer(template_cli.app, name="template")
app.add_typer(stack_cli.app, name="stack")
app.add_typer(compose_cli.app, name="compose")
app.add_typer(ssh_cli.app, name="ssh")
lab_app = typer.Typer(help="List the labs on this host.", no_args_is_help=True)
app.add_typer(lab_app, name="lab")


def _gateway_image(engine: object) -> str:
    from onebox.images import gateway

    return gateway.ensure(engine, report)  # type: ignore[arg-type]


@app.command()
def up(
    lab: LabOption = "default",
    subnet: Annotated[
        str | None, typer.Option(help="Lab subnet in CIDR form; " "default: a free 10.x.y.0/24.")
    ] = None,
    domain: Annotated[
        str | None,
        typer.Option(help="Lab DNS domain; default: " "onebox.internal or LAB.internal."),
    ] = None,
    upstream: Annotated[
        str | None,
        typer.Option(
            help="DNS server for names outside the "
            "lab, as IP[:PORT]; default: the host's "
            "resolvers; `none` turns it off."
        ),
    ] = None,
    lan: Annotated[
        bool, typer.Option("--lan", help="Share the lab on the LAN, as " "`onebox share` does.")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Create the lab, or start it again; a second `up` changes nothing."""
    with user_errors():
        engine = connect()
        image = _gateway_image(engine)
        request = labs.UpRequest(
            name=lab,
            subnet=subnet,
            domain=domain,
            upstream=upstream,
            test=os.environ.get("ONEBOX_TEST") == "1",
        )
        if lan:
            request.bind, request.allow = sharing.EVERYWHERE, sharing.allowed_clients(lab, [])
        result, changed = labs.up(engine, request, report, image)
        dashboard_cli.announce_admin(engine, result)
        if json_out:
            emit_json({**result.as_dict(), "changed": changed})
            return
        if not changed:
            out.print(f"Lab '{result.name}' is already up; nothing changed.")
        _print_lab(result)


def _print_lab(lab: labs.Lab) -> None:
    g = lab.as_dict()["gateway"]
    out.print(f"[bold]lab[/bold] {lab.name}  domain {lab.domain}  subnet {lab.subnet}")
    out.print(
        f"[bold]gateway[/bold] {lab.gateway_ip}  {lab.gateway_state}" f" ({lab.gateway_health})"
    )
    if not lab.ports:
        return
    host = lab.host
    rows = [
        ("DNS", "dns", f"dig @{host} -p {g['dns_port']} gateway.{lab.domain}"),
        (
            "HTTP by name",
            "http",
            f"curl -H 'Host: NAME.{lab.domain}' http://{host}:" f"{g['http_port']}/",
        ),
        ("HTTPS by name", "https", "onebox ca export, then curl --cacert"),
        (
            "forward proxy",
            "proxy",
            f"curl -x http://{host}:{g['proxy_port']} " f"http://NAME.{lab.domain}/",
        ),
        ("SOCKS5", "socks", f"curl --socks5-hostname {host}:{g['socks_port']} ..."),
        ("SSH entry", "ssh", f"ssh -p {g['ssh_port']} NAME@{host}"),
        ("dashboard", "dashboard", g["dashboard_url"]),
    ]
    for title, key, hint in rows:
        out.print(f"  {title:<14} {lab.bind}:{lab.ports[key]:<6} [dim]{hint}[/dim]")


@app.command()
def down(lab: LabOption = "default", json_out: JsonOption = False) -> None:
    """Stop the lab's machines and gateway; keep everything for the next `up`."""
    with user_errors():
        changed = labs.down(connect(), lab, report)
        if json_out:
            emit_json({"lab": lab, "changed": changed})
        else:
            out.print(f"Lab '{lab}' is down." if changed else f"Lab '{lab}' was already down.")


@app.command()
def destroy(
    lab: LabOption = "default",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Remove the lab: its machines, gateway, volumes and network."""
    with user_errors():
        engine = connect()
        current = labs.load(engine, lab)
        if not yes:
            if not os.isatty(0):
                raise InvalidInput(
                    f"Destroying lab '{lab}' needs a confirmation",
                    f"run `onebox destroy --lab {lab} --yes`",
                )
            count = len(engine.lab_containers(lab))
            typer.confirm(
                f"Remove lab '{lab}' ({current.subnet}) and its {count} containers?",
                abort=True,
                err=True,
            )
        removed = labs.destroy(engine, lab, report)
        if json_out:
            emit_json({"lab": lab, "removed": removed})
        else:
            out.print(f"Lab '{lab}' is gone ({removed} objects removed).")


@app.command()
def status(lab: LabOption = "default", json_out: JsonOption = False) -> None:
    """Show the lab, its gateway and every machine."""
    from onebox.machines import machine as machines

    with user_errors():
        engine = connect()
        current = labs.load(engine, lab)
        listed = machines.list_machines(engine, current)
        if json_out:
            emit_json({**current.as_dict(), "machines": [m.as_dict() for m in listed]})
            return
        _print_lab(current)
        out.print()
        table(
            ["NAME", "ADDRESS", "FQDN", "STATE", "IMAGE"],
            [[m.name, m.ip, m.fqdn, m.state, m.image] for m in listed],
            f"No machines yet: `onebox machine create web1 --lab {lab}`",
        )


@lab_app.command("ls")
def lab_ls(json_out: JsonOption = False) -> None:
    """List labs."""
    with user_errors():
        found = labs.list_labs(connect())
        if json_out:
            emit_json([lab.as_dict() for lab in found])
            return
        table(
            ["LAB", "DOMAIN", "SUBNET", "GATEWAY", "STATE"],
            [[x.name, x.domain, x.subnet, x.gateway_ip, x.gateway_state] for x in found],
            "No labs yet: `onebox up`",
        )


def _add_optional_families() -> None:
    """Families written in their own modules join here."""
    from onebox.cli import images

    app.add_typer(images.app, name="images")


def _add_demo() -> None:
    from onebox.cli.demo import demo

    app.command()(demo)


def run() -> None:
    logging.basicConfig(
        level=os.environ.get("ONEBOX_LOG", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )
    _add_demo()
    try:
        _add_optional_families()
    except ImportError as exc:  # a family still being written must not break the rest
        err.print(f"[dim]images commands unavailable: {exc}[/dim]")
    app()
