"""`onebox demo`: a lab with two small web servers, and where to look at them."""

from __future__ import annotations

from typing import Annotated

import typer

from onebox.cli.output import emit_json, out, report, user_errors
from onebox.engine import connect
from onebox.errors import NotFound
from onebox.labs import lab as labs
from onebox.machines import machine as machines

DEMO_MACHINES = ("web1", "web2")


def _web_command(name: str, domain: str) -> list[str]:
    page = (f"<h1>{name}.{domain}</h1><p>Served by machine {name} of your onebox lab."
            "</p>")
    return ["sh", "-c", f"mkdir -p /var/www && echo '{page}' > /var/www/index.html && "
            "exec httpd -f -p 80 -h /var/www"]


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
        made = []
        for name in DEMO_MACHINES:
            try:
                made.append(machines.describe(current, machines.find(engine, current, name)))
            except NotFound:
                report(f"Creating machine {name}")
                request = machines.CreateRequest(name=name, image=web_image,
                                                 command=_web_command(name, current.domain))
                made.append(machines.create(engine, current, request))
        if json_out:
            emit_json({**current.as_dict(), "machines": [m.as_dict() for m in made]})
            return
        _print_tour(current, made)


def _print_tour(lab: labs.Lab, made: list[machines.Machine]) -> None:
    host = "127.0.0.1"
    g = lab.as_dict()["gateway"]
    out.print(f"\n[bold green]Lab '{lab.name}' is up[/bold green]: domain {lab.domain}, "
              f"subnet {lab.subnet}, gateway {lab.gateway_ip}\n")
    for machine in made:
        out.print(f"  [bold]{machine.name:<6}[/bold] {machine.ip:<15} http://{machine.fqdn}/")
    first = made[0]
    out.print("\nWhere to look:")
    out.print(f"  onebox status{'' if lab.name == 'default' else ' --lab ' + lab.name}")
    out.print(f"  dig @{host} -p {g['dns_port']} {first.fqdn}")
    out.print(f"  curl http://{first.ip}/")
    out.print(f"  onebox machine exec {made[1].name} -- wget -qO- http://{first.name}/")
    out.print("\nRemove it all with: onebox destroy --yes"
              f"{'' if lab.name == 'default' else ' --lab ' + lab.name}")
