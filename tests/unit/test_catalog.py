"""The template catalog: every template reads and plans, names recipes that exist, and
keeps secrets out of its settings; recipe hashes follow their files."""

from __future__ import annotations

from pathlib import Path

import pytest

from onebox.errors import InvalidInput, NotFound
from onebox.templates import catalog, image


@pytest.mark.parametrize("name", catalog.names())
def test_every_template_plans_with_its_defaults(name: str) -> None:
    template = catalog.load(name)
    assert template.description
    secrets = {key: "s3cret" for key in template.secrets}
    project = template.project("demo", template.variables("demo", "lab.internal", {}, secrets))
    assert project.ignored == []
    if template.url_service:
        assert template.url_service in project.services
    for service in project.services.values():
        assert service.machine.startswith("demo-")
        if service.recipe:
            assert (image.recipe_dir(service.recipe) / "Dockerfile").is_file()


def test_the_catalog_has_the_issue_templates() -> None:
    assert set(catalog.names()) >= {
        "wordpress",
        "lamp",
        "lemp",
        "mysql-phpmyadmin",
        "django",
        "mongodb",
        "postgres",
        "redis",
        "static-site",
        "server",
    }


def test_mongodb_has_no_recipe_and_an_image_setting() -> None:
    template = catalog.load("mongodb")
    project = template.project(
        "m", template.variables("m", "d.internal", {"image": "my/mongo:7"}, {"ROOT_PASSWORD": "x"})
    )
    assert project.services["mongo"].recipe is None
    assert project.services["mongo"].image == "my/mongo:7"


def test_unknown_settings_and_templates_are_refused() -> None:
    with pytest.raises(InvalidInput, match="has no setting COLOR"):
        catalog.load("redis").variables("r", "d.internal", {"COLOR": "red"}, {})
    with pytest.raises(NotFound, match="Template 'nope' does not exist"):
        catalog.load("nope")


def test_recipe_hash_changes_with_a_file_and_only_then(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM onebox/base:bookworm\n")
    first = image.directory_hash(tmp_path)
    assert image.directory_hash(tmp_path) == first
    (tmp_path / "entrypoint.sh").write_text("#!/bin/sh\n")
    assert image.directory_hash(tmp_path) != first
