"""Which image a service runs: the one it names when the engine has it or a registry
gives it within a few seconds, else its recipe (or its own `build:`) built from Debian
packages on onebox's base image. Built images carry a hash of their directory, so an
unchanged recipe is never built twice."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import requests

from onebox.engine import Engine
from onebox.errors import InvalidInput, NotFound, OperationFailed
from onebox.images import base
from onebox.images import build as image_build
from onebox.images.rootfs import build_lock
from onebox.templates.compose import Build, Service

log = logging.getLogger(__name__)

Report = Callable[[str], None]
RECIPES = Path(__file__).resolve().parent.parent / "images" / "recipes"
HASH_LABEL = "onebox.recipe.hash"
# A registry that answers starts sending at once; here none answers, and a template
# must not hang on it.
PULL_PATIENCE = 4.0


def recipe_tag(recipe: str) -> str:
    return f"onebox/recipe-{recipe}:latest"


def recipe_dir(recipe: str) -> Path:
    path = RECIPES / recipe
    if not (path / "Dockerfile").is_file():
        raise NotFound(
            f"Recipe '{recipe}' does not exist",
            f"recipes live in {RECIPES}; check `x-onebox-recipe` in the template",
        )
    return path


def directory_hash(path: Path) -> str:
    """A hash of every file's relative path, mode and content under `path`, bytecode left
    out: pip compiles a recipe's .py files inside the gateway, and the same recipe must
    hash the same there as on the host."""
    digest = hashlib.sha256()
    files = (p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for item in sorted(files):
        digest.update(str(item.relative_to(path)).encode() + b"\0")
        digest.update(oct(item.stat().st_mode & 0o777).encode() + b"\0")
        digest.update(item.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


def resolve(engine: Engine, service: Service, stack: str, report: Report) -> str:
    """The image reference to run for `service`, making it when needed."""
    if service.build is not None:
        return ensure_built(engine, service.build, f"onebox/build-{service.machine}:latest", report)
    if service.image and engine.image(service.image) is not None:
        return service.image
    if service.image and pull(engine, service.image, report):
        return service.image
    if service.recipe:
        return ensure_recipe(engine, service.recipe, report)
    raise NotFound(
        f"Image '{service.image}' for service '{service.name}' of stack '{stack}' is not on "
        "this engine, no registry gives it, and it has no recipe",
        f"load it from a file saved where a registry answers (`docker save {service.image} "
        "-o image.tar` there, `docker load -i image.tar` here), or run another image "
        "(a template: `--set image=REF`; a compose file: change `image:`)",
    )


def pull(engine: Engine, ref: str, report: Report) -> bool:
    """Pulls `ref` unless ONEBOX_OFFLINE=1; gives up when the registry stays silent."""
    if os.environ.get("ONEBOX_OFFLINE") == "1":
        return False
    report(f"Pulling {ref}")
    repository, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "latest")
    api = engine.client.api
    url = f"{api.base_url}/v{api.api_version}/images/create"
    try:
        with api.post(
            url, params={"fromImage": repository, "tag": tag}, stream=True, timeout=PULL_PATIENCE
        ) as response:
            if response.status_code != 200:
                log.info("Pull of %s refused: %s", ref, response.text.strip())
                return False
            failed = [json.loads(line).get("error") for line in response.iter_lines()]
    except (requests.RequestException, ValueError) as exc:
        log.info("Pull of %s gave up: %s", ref, exc)
        return False
    return not any(failed) and engine.image(ref) is not None


def ensure_recipe(engine: Engine, recipe: str, report: Report) -> str:
    return ensure_built(engine, Build(recipe_dir(recipe)), recipe_tag(recipe), report)


def ensure_built(engine: Engine, build: Build, tag: str, report: Report) -> str:
    """Builds `tag` from `build` unless an image with the same directory hash exists."""
    if not (build.context / build.dockerfile).is_file():
        raise InvalidInput(
            f"Build context '{build.context}' has no {build.dockerfile}",
            "fix `build:` in the compose file",
        )
    wanted = directory_hash(build.context)
    if _current_hash(engine, tag) == wanted:
        return tag
    with build_lock(tag.replace("/", "-").replace(":", "-")):
        if _current_hash(engine, tag) == wanted:
            return tag  # another onebox process built it while this one waited
        base.ensure(engine, report)
        report(f"Building {tag} from {build.context.name}/{build.dockerfile}")
        _build(engine, build, tag, wanted, report)
    return tag


def _current_hash(engine: Engine, tag: str) -> str | None:
    image = engine.image(tag)
    if image is None:
        return None
    return (image.attrs.get("Config", {}).get("Labels") or {}).get(HASH_LABEL)


def _build(engine: Engine, build: Build, tag: str, digest: str, report: Report) -> None:
    image_build.build(
        engine,
        build.context,
        tag,
        {HASH_LABEL: digest},
        report,
        f"read the lines above and fix {build.context / build.dockerfile}, then run again",
        dockerfile=build.dockerfile,
        buildargs=build.args,
    )
    if _current_hash(engine, tag) != digest:
        raise OperationFailed(
            f"Building image '{tag}' ended without an image",
            f"fix {build.context / build.dockerfile} and run again",
        )
