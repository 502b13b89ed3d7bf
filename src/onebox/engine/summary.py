"""Cheap listings for views that refresh often: one engine call for all of a lab's
machines (the SDK's `containers.list` inspects each container in turn), and the image
and network lists with what uses them."""

from __future__ import annotations

from typing import Any

from docker.models.containers import Container

from onebox.engine.client import Engine
from onebox.engine.labels import ROLE_MACHINE, Label


class MachineLister:
    """Lists a lab's machines as Container models filled from the engine's summaries.
    The start time is not in a summary: it is inspected once per container and state."""

    def __init__(self, engine: Engine, lab: str) -> None:
        self.engine = engine
        self.lab = lab
        self._started: dict[tuple[str, str], str] = {}

    def containers(self) -> list[Container]:
        filters = {"label": [f"{Label.LAB}={self.lab}", f"{Label.ROLE}={ROLE_MACHINE}"]}
        summaries = self.engine.client.api.containers(all=True, filters=filters)
        live = {(s["Id"], s.get("State", "")) for s in summaries}
        self._started = {key: value for key, value in self._started.items() if key in live}
        return [self._model(summary) for summary in summaries]

    def _model(self, summary: dict[str, Any]) -> Container:
        state = str(summary.get("State", ""))
        key = (summary["Id"], state)
        if key not in self._started:
            self._started[key] = self._started_at(summary["Id"])
        names = summary.get("Names") or [summary["Id"][:12]]
        attrs = {
            "Id": summary["Id"],
            "Name": names[0],
            "Config": {"Labels": summary.get("Labels") or {}, "Image": summary.get("Image", "")},
            "State": {"Status": state, "StartedAt": self._started[key]},
        }
        return self.engine.client.containers.prepare_model(attrs)

    def _started_at(self, container_id: str) -> str:
        try:
            attrs = self.engine.client.api.inspect_container(container_id)
        except Exception:  # gone between the listing and now; the next refresh drops it
            return ""
        return str(attrs.get("State", {}).get("StartedAt", ""))


def images(engine: Engine) -> list[dict[str, Any]]:
    """Images with their tags, size and the containers that use them."""
    users: dict[str, list[str]] = {}
    for summary in engine.client.api.containers(all=True):
        name = (summary.get("Names") or ["?"])[0].lstrip("/")
        users.setdefault(summary.get("ImageID", ""), []).append(name)
    listed = []
    for image in engine.client.api.images():
        listed.append(
            {
                "id": image["Id"].removeprefix("sha256:")[:12],
                "tags": [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"],
                "size": int(image.get("Size", 0)),
                "created": int(image.get("Created", 0)),
                "used_by": sorted(users.get(image["Id"], [])),
            }
        )
    return sorted(listed, key=lambda i: (not i["tags"], i["tags"][:1], i["id"]))


def networks(engine: Engine) -> list[dict[str, Any]]:
    listed = []
    for network in engine.client.api.networks():
        configs = (network.get("IPAM") or {}).get("Config") or []
        detail = engine.client.api.inspect_network(network["Id"])
        listed.append(
            {
                "id": network["Id"][:12],
                "name": network.get("Name", ""),
                "driver": network.get("Driver", ""),
                "subnets": [c["Subnet"] for c in configs if c.get("Subnet")],
                "lab": (network.get("Labels") or {}).get(Label.LAB, ""),
                "containers": len(detail.get("Containers") or {}),
            }
        )
    return sorted(listed, key=lambda n: (not n["lab"], n["name"]))
