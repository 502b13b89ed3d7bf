"""The one package that talks to the Docker engine; every other package asks it."""

from onebox.engine.client import Engine, connect
from onebox.engine.labels import Label

__all__ = ["Engine", "Label", "connect"]
