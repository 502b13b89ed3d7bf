"""`onebox demo`: a lab with two small web servers, and where to look at them."""

from __future__ import annotations

from typing import Annotated

import typer

from onebox.cli.dashboard import announce_admin
from onebox.cli.output import emit_json, out, report, user_errors
from onebox.engine import connect
from onebox.errors import NotFound
from onebox.labs import lab as labs
from onebox.machines import machine as machines

DEMO_MACHINES = ("web1", "web2")


def _web_command(name: str, domain: str) -> list[str]:
    page = f"<h1>{name}.{domain}</h1><p>Served by machine {name} of your onebox lab." "</p>"
    return [
        "sh",
        "-c",
        f"mkdir -p /var/www && echo '{page}' > /var/www/index.html && "
        "exec httpd -f -p 80 -h /var/www",
    ]


def demo(
    lab: Annotated[str, typer.Option("--lab", "-l", help="Lab to use.")] = "default",
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Bring up a lab with two web servers and print how to reach them."""
    from onebox.images import busybox, gateway

    with user_errors():
        engine = connect()
        image = gateway.ensure(engine, report)
        web_image = busybox.ensure(engine, report)
        current, _ = labs.up(engine, labs.UpRequest(name=lab), report, image)
        announce_admin(engine, current)
        made = []
        for name in DEMO_MACHINES:
            try:
                made.append(machines.describe(current, machines.find(engine, current, name)))
            except NotFound:
                report(f"Creating machine {name}")
                request = machines.CreateRequest(
                    name=name, image=web_image, command=_web_command(name, current.domain)
                )
                made.append(machines.create(engine, current, request))
        if json_out:
            emit_json({**current.as_dict(), "machines": [m.as_dict() for m in made]})
            return
        _print_tour(current, made)


def _print_tour(lab: labs.Lab, made: list[machines.Machine]) -> None:
    host = "127.0.0.1"
    g = lab.as_dict()["gateway"]
    suffix = "" if lab.name == "default" else f" --lab {lab.name}"
    out.print(
        f"\n[bold green]Lab '{lab.name}' is up[/bold green]: domain {lab.domain}, "
        f"subnet {lab.subnet}, gateway {lab.gateway_ip}\n"
    )
    for machine in made:
        out.print(f"  [bold]{machine.name:<6}[/bold] {machine.ip:<15} http://{machine.fqdn}/")
    first, second = made[0], made[1]
    out.print("\nWhere to look:")
    out.print(
        f"  dashboard      {g['dashboard_url']}  (user admin; password above, shown "
        "on the first up)"
    )
    out.print(f"  by name        curl -H 'Host: {first.fqdn}' http://{host}:{g['http_port']}/")
    out.print(f"  via the proxy  curl -x http://{host}:{g['proxy_port']} http://{first.fqdn}/")
    out.print(f"  DNS            dig @{host} -p {g['dns_port']} {first.fqdn}")
    out.print(
        f"  inside         onebox machine exec {second.name}{suffix} -- "
        f"wget -qO- http://{first.name}/"
    )
    out.print(f"  everything     onebox status{suffix}")
    out.print(f"\nRemove it all with: onebox destroy --yes{suffix}")
