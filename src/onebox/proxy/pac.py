"""The proxy auto-config (PAC) file a LAN user sets once in a browser: the lab's domain
and subnet go through the forward proxy, everything else goes direct. It only renders
text; the forward proxy serves it at /proxy.pac on its own port."""

from __future__ import annotations

import ipaddress
import re

PATH = "/proxy.pac"
CONTENT_TYPE = "application/x-ns-proxy-autoconfig"

# Only the Host header of the PAC request is echoed into the file, so it must be a plain
# host[:port] (or [v6]:port) with nothing that could end the JavaScript string.
_PROXY_ADDRESS = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$")

_TEMPLATE = """\
// onebox lab {domain}: lab names and addresses through the lab's proxy, the rest direct.
function FindProxyForURL(url, host) {{
  host = host.toLowerCase();
  if (host == "{domain}" || dnsDomainIs(host, ".{domain}")) {{
    return "PROXY {proxy}";
  }}
  // Only address literals are tested, so a browser never resolves a name for this.
  if (/^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$/.test(host) &&
      isInNet(host, "{network}", "{netmask}")) {{
    return "PROXY {proxy}";
  }}
  return "DIRECT";
}}
"""


def valid_proxy_address(text: str) -> bool:
    return bool(_PROXY_ADDRESS.match(text))


def render(domain: str, subnet: ipaddress.IPv4Network, proxy: str) -> str:
    """The PAC file; `proxy` is host:port as the client reaches the forward proxy."""
    if not valid_proxy_address(proxy):
        raise ValueError(f"proxy address {proxy!r} is not host:port")
    return _TEMPLATE.format(
        domain=domain.lower().rstrip("."),
        proxy=proxy,
        network=subnet.network_address,
        netmask=subnet.netmask,
    )
