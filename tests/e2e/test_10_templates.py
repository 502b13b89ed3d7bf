"""Scenario 10: templates run real stacks from Debian-built images: WordPress installed over
HTTP, phpMyAdmin logged in by the database's lab name, LAMP and LEMP pages reading MariaDB,
Django migrated onto PostgreSQL; secrets are shown once and kept; images build once."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.stackweb import Site, cli

STACKS = {
    "blog": "wordpress",
    "pma": "mysql-phpmyadmin",
    "lamp": "lamp",
    "lemp": "lemp",
    "dj": "django",
}


@pytest.fixture(scope="module")
def stacks(lab: Any) -> Any:
    runs = {}
    try:
        for name, template in STACKS.items():
            result = cli(lab, "template", "run", template, "--name", name, "--json")
            runs[name] = {**result.json(), "stderr": result.stderr}
        yield runs
    finally:
        for name in STACKS:
            cli(lab, "stack", "rm", name, "--volumes", check=False)


def machine_ids(lab: Any, engine: Any, stack: str) -> dict[str, Any]:
    found = engine.client.containers.list(
        all=True, filters={"label": [f"onebox.lab={lab.name}", f"onebox.stack={stack}"]}
    )
    return {c.labels["onebox.service"]: c for c in found}


def test_template_ls_lists_every_template() -> None:
    from onebox.templates import catalog
    from tests.conftest import onebox

    listed = {t["name"]: t for t in onebox("template", "ls", "--json").json()}
    assert set(listed) == set(catalog.names())
    assert listed["wordpress"]["services"] == ["db", "wordpress"]


def test_wordpress_installs_over_http_and_serves_its_first_post(lab: Any, stacks: Any) -> None:
    assert stacks["blog"]["url"] == f"http://blog-wordpress.{lab.domain}/"
    site = Site(lab, "blog-wordpress")
    assert "Installation" in site.wait("/wp-admin/install.php").text
    form = {
        "weblog_title": "onebox blog",
        "user_name": "admin",
        "admin_password": "pw-Test-1",
        "admin_password2": "pw-Test-1",
        "pw_weak": "1",
        "admin_email": "a@example.org",
        "blog_public": "0",
        "language": "",
    }
    done = site.request("POST", "/wp-admin/install.php?step=2", data=form)
    assert "<h1>Success!</h1>" in done.text
    post = site.get("/?p=1")
    assert post.status_code == 200
    assert "Hello world!" in post.text


def test_phpmyadmin_logs_in_to_the_database_by_its_lab_name(lab: Any, stacks: Any) -> None:
    password = stacks["pma"]["secrets"]["DB_ROOT_PASSWORD"]
    site = Site(lab, "pma-phpmyadmin")
    page = site.wait("/").text
    form = {
        "pma_username": "root",
        "pma_password": password,
        "server": "1",
        "route": "/",
        "token": re.search(r'name="token" value="([^"]+)"', page).group(1),
    }  # type: ignore[union-attr]
    session = re.search(r'name="set_session" value="([^"]+)"', page)
    if session:
        form["set_session"] = session.group(1)
    logged_in = site.request("POST", "/index.php?route=/", data=form).text
    assert "Access denied" not in logged_in
    assert f"pma-db.{lab.domain}" in logged_in
    assert "logout" in logged_in.lower()


@pytest.mark.parametrize("stack, app", [("lamp", "lamp-web"), ("lemp", "lemp-php")])
def test_php_page_reads_a_row_from_mariadb(lab: Any, stacks: Any, stack: str, app: str) -> None:
    answer = Site(lab, f"{stack}-web").wait("/")
    assert answer.status_code == 200
    assert answer.text.strip().endswith(f"on {app} says: Hello from MariaDB")


def test_django_admin_login_page_and_migrations_in_postgresql(lab: Any, stacks: Any) -> None:
    page = Site(lab, "dj-app").wait("/admin/login/")
    assert page.status_code == 200
    assert "Django site admin" in page.text
    query = "SELECT name FROM django_migrations WHERE app = 'admin' ORDER BY id"
    applied = cli(
        lab, "machine", "exec", "dj-db", "--", "psql", "-U", "django", "-d", "django", "-Atc", query
    ).stdout.split()
    assert applied[0] == "0001_initial"


def instant(stamp: str) -> tuple[str, str]:
    """Docker's RFC 3339 times, comparable whatever digits the fraction kept."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return whole, fraction.ljust(9, "0")


def test_apps_start_only_after_their_database_is_healthy(
    lab: Any, engine: Any, stacks: Any
) -> None:
    machines = machine_ids(lab, engine, "blog")
    # The health check pings port 3306, which the first-start server never opens; the
    # real server says so in its Version line.
    lines = machines["db"].logs(timestamps=True).decode(errors="replace").splitlines()
    serving = next(line.split()[0] for line in lines if "port: 3306" in line)
    assert instant(machines["wordpress"].attrs["Created"]) > instant(serving)


def test_secrets_are_shown_once_kept_and_never_in_progress_output(lab: Any, stacks: Any) -> None:
    shown = stacks["blog"]["secrets"]
    assert set(shown) == {"DB_PASSWORD", "DB_ROOT_PASSWORD"}
    again = cli(lab, "template", "secrets", "blog", "--json").json()
    assert again == shown
    for run in stacks.values():
        for value in run["secrets"].values():
            assert value not in run["stderr"]


def test_a_second_run_reuses_the_built_images(lab: Any, engine: Any, stacks: Any) -> None:
    before = {i.id for i in engine.client.images.list(name="onebox/recipe-*")}
    result = cli(lab, "template", "run", "lamp", "--name", "lamp2", "--json")
    try:
        assert "Building" not in result.stderr
        after = {i.id for i in engine.client.images.list(name="onebox/recipe-*")}
        assert after == before
        assert "lamp2" in {s["name"] for s in cli(lab, "stack", "ls", "--json").json()}
    finally:
        cli(lab, "stack", "rm", "lamp2", "--volumes")
    assert "lamp2" not in {s["name"] for s in cli(lab, "stack", "ls", "--json").json()}


def test_mongodb_without_an_image_says_how_to_provide_one(lab: Any) -> None:
    result = cli(lab, "template", "run", "mongodb", "--name", "mongo", check=False)
    assert result.code == 3
    assert "docker load -i" in result.stderr and "--set image=" in result.stderr
    assert cli(lab, "template", "secrets", "mongo", check=False).code != 0


def test_an_unknown_setting_is_refused_before_anything_is_made(lab: Any) -> None:
    result = cli(
        lab, "template", "run", "redis", "--name", "cache", "--set", "COLOR=red", check=False
    )
    assert result.code == 2
    assert "has no setting COLOR" in result.stderr
