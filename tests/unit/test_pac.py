"""The PAC file, evaluated by a real JavaScript engine (node) with the PAC helper
functions written out as browsers define them, for lab and outside URLs."""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess

import pytest

from onebox.proxy import pac

# Browsers' helpers, reduced to what PAC files use; isInNet refuses names, because a
# browser would resolve them and the lab's PAC must never cause an outside lookup.
HELPERS = """
function dnsDomainIs(host, domain) {
  return host.length >= domain.length &&
         host.substring(host.length - domain.length) == domain;
}
function toNumber(text) {
  var parts = text.split(".");
  if (parts.length != 4) throw new Error("isInNet was asked about a name: " + text);
  return parts.reduce(function (n, p) { return n * 256 + Number(p); }, 0);
}
function isInNet(host, pattern, mask) {
  var m = toNumber(mask);
  return (toNumber(host) & m) >>> 0 == (toNumber(pattern) & m) >>> 0;
}
function isPlainHostName(host) { return host.indexOf(".") < 0; }
function shExpMatch(text, pattern) {
  var re = "^" + pattern.replace(/[.]/g, "\\\\.").replace(/[*]/g, ".*") + "$";
  return new RegExp(re).test(text);
}
function dnsResolve(host) { throw new Error("the PAC resolved " + host); }
"""

CASES = {
    "http://web.lab.internal/": "PROXY 127.0.0.1:17128",
    "https://shop.lab.internal:8443/cart": "PROXY 127.0.0.1:17128",
    "http://A.B.LAB.INTERNAL/": "PROXY 127.0.0.1:17128",
    "http://lab.internal/": "PROXY 127.0.0.1:17128",
    "http://10.88.5.10/": "PROXY 127.0.0.1:17128",
    "http://10.88.5.255:8080/": "PROXY 127.0.0.1:17128",
    "http://10.88.6.10/": "DIRECT",
    "http://192.168.1.1/": "DIRECT",
    "https://example.com/": "DIRECT",
    "http://notlab.internal/": "DIRECT",
    "http://web.lab.internal.example.com/": "DIRECT",
    "http://localhost:8080/": "DIRECT",
    "http://web/": "DIRECT",
}


def host_of(url: str) -> str:
    authority = url.split("://", 1)[1].split("/", 1)[0]
    return authority.rsplit(":", 1)[0] if ":" in authority else authority


def evaluate(script: str, urls: list[str]) -> dict[str, str]:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed (apt-get install nodejs)")
    cases = json.dumps({url: host_of(url) for url in urls})
    program = (
        f"{HELPERS}\n{script}\nvar cases = {cases};\nvar out = {{}};\n"
        "for (var url in cases) out[url] = FindProxyForURL(url, cases[url]);\n"
        "console.log(JSON.stringify(out));\n"
    )
    run = subprocess.run([node, "-e", program], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    return dict(json.loads(run.stdout))


def test_lab_names_and_addresses_go_through_the_proxy_and_the_rest_direct() -> None:
    script = pac.render("lab.internal", ipaddress.IPv4Network("10.88.5.0/24"), "127.0.0.1:17128")
    assert evaluate(script, list(CASES)) == CASES


def test_the_proxy_address_is_the_one_the_client_used() -> None:
    script = pac.render("lab.internal", ipaddress.IPv4Network("10.88.5.0/24"), "192.168.1.20:17128")
    result = evaluate(script, ["http://web.lab.internal/"])
    assert result["http://web.lab.internal/"] == "PROXY 192.168.1.20:17128"


@pytest.mark.parametrize("bad", ['x"; return "DIRECT', "a b:1", "host:1:2", "", "h:p"])
def test_a_proxy_address_that_could_break_the_script_is_refused(bad: str) -> None:
    assert not pac.valid_proxy_address(bad)
    with pytest.raises(ValueError):
        pac.render("lab.internal", ipaddress.IPv4Network("10.88.5.0/24"), bad)
