"""nginx configuration for the lab's reverse proxy, rendered from the lab's sites as a
pure function: the same sites give the same bytes. It never runs nginx or touches
files; `onebox.proxy.reverse` does that."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

PAGES = "pages"
NOT_FOUND_PAGE = "404.html"


@dataclass(frozen=True)
class Site:
    """One machine's names as the proxy serves them."""

    machine: str
    names: tuple[str, ...]  # fully qualified; a wildcard as `*.shop.DOMAIN`
    upstream: str | None  # `IP:PORT` of its web server, None while the machine is stopped
    web_port: int
    cert: str
    key: str

    @property
    def page(self) -> str:
        return f"502-{self.machine}.html"


@dataclass(frozen=True)
class Layout:
    """Where the rendered files live and the lab facts that go into them."""

    lab: str
    domain: str
    run_dir: str  # pid file, temporary files and the pages
    default_cert: str  # for names the lab does not have
    default_key: str
    host_http_port: int = 0  # ports published on the host, for the links on the 404 page
    host_https_port: int = 0
    http_port: int = 80
    https_port: int = 443


def render(layout: Layout, sites: Sequence[Site]) -> dict[str, str]:
    """Every file of the proxy's configuration: `nginx.conf`, and the error pages under
    `pages/` (relative to `layout.run_dir`)."""
    files = {
        "nginx.conf": _main(layout, sites),
        f"{PAGES}/{NOT_FOUND_PAGE}": not_found_page(layout, sites),
    }
    for site in sites:
        files[f"{PAGES}/{site.page}"] = bad_gateway_page(layout, site)
    return files


def _main(layout: Layout, sites: Sequence[Site]) -> str:
    run = layout.run_dir
    parts = [_HEAD.format(lab=layout.lab, run=run)]
    parts += [_upstream(site) for site in sites if site.upstream]
    parts.append(
        _DEFAULT_SERVER.format(
            http=layout.http_port,
            https=layout.https_port,
            cert=layout.default_cert,
            key=layout.default_key,
            pages=f"{run}/{PAGES}",
            page=NOT_FOUND_PAGE,
        )
    )
    parts += [_server(layout, site) for site in sites]
    return "\n".join(parts) + "}\n"


def _upstream_name(site: Site) -> str:
    return f"machine_{site.machine}"


def _upstream(site: Site) -> str:
    # Connections kept open to each machine spare a TCP handshake per proxied request.
    return (
        f"    upstream {_upstream_name(site)} {{\n"
        f"        server {site.upstream};\n"
        f"        keepalive 32;\n"
        f"    }}\n"
    )


def _server(layout: Layout, site: Site) -> str:
    target = f"proxy_pass http://{_upstream_name(site)};" if site.upstream else "return 502;"
    return _SITE_SERVER.format(
        machine=site.machine,
        names=" ".join(site.names),
        http=layout.http_port,
        https=layout.https_port,
        cert=site.cert,
        key=site.key,
        page=f"{layout.run_dir}/{PAGES}/{site.page}",
        target=target,
    )


_HEAD = """\
# The reverse proxy of lab '{lab}', written by the onebox gateway; edits are overwritten.
worker_processes auto;
pid {run}/nginx.pid;
error_log stderr warn;

events {{
    worker_connections 8192;
}}

http {{
    access_log off;
    server_tokens off;
    default_type text/html;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 10000;
    server_names_hash_bucket_size 128;
    server_names_hash_max_size 8192;
    client_body_temp_path {run}/tmp/body;
    proxy_temp_path {run}/tmp/proxy;
    fastcgi_temp_path {run}/tmp/fastcgi;
    uwsgi_temp_path {run}/tmp/uwsgi;
    scgi_temp_path {run}/tmp/scgi;

    # Bodies stream through in both directions, never held in memory or on disk:
    # a 100 MiB upload or download leaves the gateway's memory flat.
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_max_temp_file_size 0;
    proxy_http_version 1.1;
    proxy_connect_timeout 5s;
    # Long enough for an idle WebSocket; a user closes it, not the proxy.
    proxy_read_timeout 1h;
    proxy_send_timeout 1h;

    # The Host header goes on as the client sent it (with its port), so that apps
    # behind the proxy build links that work from where the user stands.
    proxy_set_header Host $http_host;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $connection_upgrade;
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_set_header X-Forwarded-Host $http_host;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header Forwarded "for=$remote_addr;host=\\"$http_host\\";proto=$scheme";

    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:onebox_tls:10m;
    ssl_session_timeout 1h;

    # An empty Connection header keeps the upstream connection reusable; `upgrade`
    # only when the client asks for a WebSocket.
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        "" "";
    }}
"""

_DEFAULT_SERVER = """\
    server {{
        listen {http} default_server reuseport;
        listen {https} ssl default_server reuseport;
        server_name _;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {pages};
        charset utf-8;
        error_page 404 /{page};
        location = /{page} {{
            internal;
        }}
        location / {{
            return 404;
        }}
    }}
"""

_SITE_SERVER = """\
    # machine {machine}
    server {{
        listen {http};
        listen {https} ssl;
        server_name {names};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        error_page 502 504 /.onebox/502.html;
        location = /.onebox/502.html {{
            internal;
            charset utf-8;
            alias {page};
        }}
        location / {{
            {target}
        }}
    }}
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n"
        "<style>body{font-family:system-ui,sans-serif;max-width:46em;margin:3em auto;"
        "padding:0 1em;color:#222}code{background:#eee;padding:0 .2em}"
        "td{padding:.2em 1em .2em 0}</style>\n"
        f"</head>\n<body>\n<h1>{html.escape(title)}</h1>\n{body}</body>\n</html>\n"
    )


def _link(scheme: str, name: str, port: int) -> str:
    if name.startswith("*."):
        return html.escape(f"{scheme}://{name}/")
    default = 80 if scheme == "http" else 443
    suffix = f":{port}" if port and port != default else ""
    url = html.escape(f"{scheme}://{name}{suffix}/")
    return f'<a href="{url}">{url}</a>'


def not_found_page(layout: Layout, sites: Sequence[Site]) -> str:
    """The page for a name that no machine has: every URL the lab does have."""
    rows = []
    for site in sites:
        for name in site.names:
            state = "" if site.upstream else " (stopped)"
            rows.append(
                f"<tr><td>{_link('http', name, layout.host_http_port)}</td>"
                f"<td>{_link('https', name, layout.host_https_port)}</td>"
                f"<td>machine <code>{html.escape(site.machine)}</code>{state}</td></tr>"
            )
    listing = (
        "<table>\n" + "\n".join(rows) + "\n</table>\n"
        if rows
        else f"<p>Lab '{html.escape(layout.lab)}' has no machines yet: "
        f"<code>onebox machine create web --lab {html.escape(layout.lab)}</code>"
        "</p>\n"
    )
    body = (
        f"<p>No machine of lab <code>{html.escape(layout.lab)}</code> answers to this "
        "name. The lab's URLs:</p>\n"
        + listing
        + "<p>Ports are those published on the host; inside the lab, leave them out.</p>\n"
    )
    return _page("404: unknown name", body)


def bad_gateway_page(layout: Layout, site: Site) -> str:
    """The page for a machine that is stopped or whose web server does not answer."""
    name = html.escape(site.machine)
    lab = html.escape(layout.lab)
    if site.upstream is None:
        body = (
            f"<p>Machine <code>{name}</code> of lab <code>{lab}</code> is stopped.</p>\n"
            f"<p>Start it with <code>onebox machine start {name} --lab {lab}</code>.</p>\n"
        )
        return _page(f"502: machine '{site.machine}' is stopped", body)
    body = (
        f"<p>Machine <code>{name}</code> of lab <code>{lab}</code> runs, but nothing "
        f"answered on its web port {site.web_port}.</p>\n"
        f"<p>Check its web server with <code>onebox machine logs {name} --lab {lab}"
        f"</code>, or give the right port with <code>--web-port</code>.</p>\n"
    )
    return _page(f"502: machine '{site.machine}' does not answer", body)
