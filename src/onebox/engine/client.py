"""Connection to the Docker engine, and the few engine calls the domain needs, each
turning Docker's exceptions into onebox errors that say what to do."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.images import Image
from docker.models.networks import Network

from onebox.engine.labels import ROLE_GATEWAY, ROLE_MACHINE, ROLE_NETWORK, Label
from onebox.errors import EngineUnavailable, NotFound, OperationFailed

log = logging.getLogger(__name__)

START_HINT = (
    "start the engine: `dockerd >/var/log/dockerd.log 2>&1 &` as root "
    "(or `systemctl start docker`), or run `bash scripts/setup` from the onebox checkout"
)


def connect(timeout: int = 120) -> Engine:
    """Connects to the engine named by DOCKER_HOST (default: the local socket)."""
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(f"No Docker engine answers at {where}", START_HINT) from exc
    return Engine(client)


class Engine:
    """A Docker client with onebox's label vocabulary."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    # -- networks -------------------------------------------------------------------

    def lab_network(self, lab: str) -> Network | None:
        found = self.client.networks.list(
            filters={"label": [f"{Label.LAB}={lab}", f"{Label.ROLE}={ROLE_NETWORK}"]}
        )
        return found[0] if found else None

    def lab_networks(self) -> list[Network]:
        return list(self.client.networks.list(filters={"label": f"{Label.ROLE}={ROLE_NETWORK}"}))

    def all_networks(self) -> list[Network]:
        return list(self.client.networks.list())

    # -- containers -----------------------------------------------------------------

    def gateway(self, lab: str) -> Container | None:
        found = self._containers(lab, ROLE_GATEWAY, full=True)
        return found[0] if found else None

    def machines(self, lab: str, full: bool = False) -> list[Container]:
        """The lab's machines. By default from one list call, with only id, name, labels,
        image and state filled in (`reload()` gets the rest): inspecting each container
        would make every create in a lab of 200 machines cost 200 calls."""
        return self._containers(lab, ROLE_MACHINE, full)

    def lab_containers(self, lab: str, full: bool = False) -> list[Container]:
        return self._list([f"{Label.LAB}={lab}"], full)

    def _containers(self, lab: str, role: str, full: bool = False) -> list[Container]:
        return self._list([f"{Label.LAB}={lab}", f"{Label.ROLE}={role}"], full)

    def _list(self, labels: list[str], full: bool) -> list[Container]:
        if full:
            return list(self.client.containers.list(all=True, filters={"label": labels}))
        rows = self.client.api.containers(all=True, filters={"label": labels})
        return [self._light(row) for row in rows]

    def _light(self, row: dict[str, Any]) -> Container:
        names = row.get("Names") or ["/"]
        attrs = {
            "Id": row["Id"],
            "Name": names[0],
            "Config": {"Labels": row.get("Labels") or {}, "Image": row.get("Image", "")},
            "State": {"Status": row.get("State", "")},
        }
        return Container(attrs=attrs, client=self.client, collection=self.client.containers)

    def container(self, ref: str) -> Container | None:
        try:
            return self.client.containers.get(ref)
        except docker.errors.NotFound:
            return None

    def endpoint(self, ipv4_address: str, aliases: list[str] | None = None) -> Any:
        """An endpoint config that pins a container's address on a network."""
        return self.client.api.create_endpoint_config(ipv4_address=ipv4_address, aliases=aliases)

    # -- images ---------------------------------------------------------------------

    def image(self, ref: str) -> Image | None:
        if not ref.strip():
            return None
        try:
            return self.client.images.get(ref)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            if exc.status_code == 400:  # an unparsable reference is as absent as a missing one
                return None
            raise

    def require_image(self, ref: str) -> Image:
        image = self.image(ref)
        if image is None:
            raise NotFound(
                f"Image '{ref}' does not exist on this engine",
                "list images with `docker images`, or build one with `onebox images build`",
            )
        return image

    # -- events ---------------------------------------------------------------------

    def events(self, lab: str) -> Iterator[dict[str, Any]]:
        """Container events of one lab, decoded; ends when the engine closes the stream."""
        filters = {"type": "container", "label": f"{Label.LAB}={lab}"}
        yield from self.client.events(decode=True, filters=filters)


def remove_quietly(obj: Any) -> None:
    """Removes a container or network, ignoring one that is already gone."""
    try:
        if isinstance(obj, Container):
            obj.remove(force=True, v=True)
        else:
            obj.remove()
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as exc:
        name = getattr(obj, "name", obj)
        raise OperationFailed(
            f"Could not remove '{name}': {exc.explanation}",
            "remove it by hand with `docker rm -f` or `docker network rm`",
        ) from exc
