"""What every data plane in the gateway offers the gateway's main loop: start, take a
new snapshot of the lab's machines, close. DNS, the reverse proxy, the forward proxy,
the SSH entry and the dashboard each implement it in their own package."""

from __future__ import annotations

from typing import Protocol

from onebox.gateway.watcher import MachineView


class Plane(Protocol):
    name: str

    async def start(self) -> None:
        """Binds its ports inside the gateway; raises if it cannot."""

    def update(self, views: list[MachineView]) -> None:
        """Called on the event loop with the full list of machines after every change."""

    async def close(self) -> None:
        """Stops serving; called once on shutdown."""
