"""The reverse proxy's nginx configuration and pages, rendered from fixed sites and
compared with golden files; the names each machine gets; and nginx accepting the result.
Set UPDATE_GOLDEN=1 to rewrite the golden files after a deliberate change."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from onebox.gateway.watcher import MachineView
from onebox.proxy import ca, nginx
from onebox.proxy.reverse import site_names, url_name

GOLDEN = Path(__file__).parent / "golden"
DOMAIN = "lab1.internal"


def layout(run_dir: str = "/run/onebox/nginx", cert: str = "/certs/default") -> nginx.Layout:
    return nginx.Layout(
        lab="lab1",
        domain=DOMAIN,
        run_dir=run_dir,
        default_cert=f"{cert}.pem",
        default_key=f"{cert}.key",
        host_http_port=17080,
        host_https_port=17443,
    )


def sites(cert: str = "/certs/site") -> list[nginx.Site]:
    return [
        nginx.Site(
            machine="shop",
            names=("shop.lab1.internal", "store.lab1.internal", "*.store.lab1.internal"),
            upstream="10.80.0.10:8080",
            web_port=8080,
            cert=f"{cert}.pem",
            key=f"{cert}.key",
        ),
        nginx.Site(
            machine="sleepy",
            names=("sleepy.lab1.internal",),
            upstream=None,
            web_port=80,
            cert=f"{cert}.pem",
            key=f"{cert}.key",
        ),
    ]


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs; UPDATE_GOLDEN=1 if that is intended"


def test_config_matches_golden_file() -> None:
    files = nginx.render(layout(), sites())
    assert sorted(files) == [
        "nginx.conf",
        "pages/404.html",
        "pages/502-shop.html",
        "pages/502-sleepy.html",
    ]
    check_golden("reverse_nginx.conf", files["nginx.conf"])


def test_pages_match_golden_files() -> None:
    files = nginx.render(layout(), sites())
    check_golden("reverse_404.html", files["pages/404.html"])
    check_golden("reverse_502_stopped.html", files["pages/502-sleepy.html"])
    check_golden("reverse_502_silent.html", files["pages/502-shop.html"])


def test_rendering_twice_gives_the_same_bytes() -> None:
    assert nginx.render(layout(), sites()) == nginx.render(layout(), sites())


def test_stopped_machine_answers_502_without_an_upstream() -> None:
    conf = nginx.render(layout(), sites())["nginx.conf"]
    assert "upstream machine_sleepy" not in conf
    sleepy = conf[conf.index("# machine sleepy") :]
    assert "return 502;" in sleepy


def test_404_page_escapes_what_it_lists() -> None:
    odd = nginx.Site(
        machine="x", names=("x.lab1.internal",), upstream=None, web_port=80, cert="c", key="k"
    )
    page = nginx.not_found_page(
        nginx.Layout(lab="<b>", domain=DOMAIN, run_dir="/r", default_cert="c", default_key="k"),
        [odd],
    )
    assert "<b>" not in page and "&lt;b&gt;" in page


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("shop.lab1.internal", "shop.lab1.internal"),
        ("SHOP.lab1.internal.", "shop.lab1.internal"),
        ("shop", "shop.lab1.internal"),
        ("*.shop.lab1.internal", "*.shop.lab1.internal"),
        ("*.shop", "*.shop.lab1.internal"),
        ("http://shop.lab1.internal/", "shop.lab1.internal"),
        ("shop.example.com", "shop.example.com.lab1.internal"),
        ("bad;name", None),
        ("sh op", None),
        ("shop.*.lab1.internal", None),
        ("-shop", None),
        ("a" * 64, None),
        ("x\n}server{", None),
    ],
)
def test_url_names_are_qualified_or_refused(url: str, expected: str | None) -> None:
    assert url_name(DOMAIN, url) == expected


def view(name: str, *urls: str) -> MachineView:
    return MachineView(name=name, ip=ipaddress.IPv4Address("10.80.0.10"), running=True, urls=urls)


def test_a_machine_name_wins_over_another_machines_url() -> None:
    found, skipped = site_names(DOMAIN, [view("web", "shop", "*.shop"), view("shop")])
    assert found == {
        "shop": ("shop.lab1.internal",),
        "web": ("web.lab1.internal", "*.shop.lab1.internal"),
    }
    assert skipped == ["URL shop.lab1.internal of machine 'web' belongs to 'shop'"]


def test_a_url_claimed_twice_goes_to_the_first_machine_by_name() -> None:
    found, skipped = site_names(DOMAIN, [view("zeta", "blog"), view("alpha", "blog", "bad;")])
    assert found["alpha"] == ("alpha.lab1.internal", "blog.lab1.internal")
    assert found["zeta"] == ("zeta.lab1.internal",)
    assert len(skipped) == 2


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed here")
def test_nginx_accepts_the_rendered_config(tmp_path: Path) -> None:
    authority = ca.ensure_authority(tmp_path / "data", "lab1", DOMAIN)
    leaf = authority.ensure_leaf(("shop.lab1.internal",))
    run = tmp_path / "run"
    (run / "pages").mkdir(parents=True)
    (run / "tmp").mkdir()
    files = nginx.render(
        layout(str(run), str(leaf.cert.with_suffix(""))), sites(str(leaf.cert.with_suffix("")))
    )
    (run / "nginx.conf").write_text(files["nginx.conf"])
    checked = subprocess.run(
        ["nginx", "-t", "-q", "-e", "stderr", "-c", str(run / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
