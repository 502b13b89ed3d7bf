"""Fixtures of the end-to-end scenarios that drive the dashboard in Chromium; each module
gets its own browser page on its own lab's dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import LabHandle
from tests.e2e.browser import chromium_page, dashboard


@pytest.fixture(scope="module")
def dash(lab: LabHandle) -> dict[str, Any]:
    return dashboard(lab)


@pytest.fixture(scope="module")
def page(dash: dict[str, Any]) -> Iterator[Any]:
    with chromium_page() as page:
        yield page
