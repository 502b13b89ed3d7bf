"""Scenario 5: addresses and DNS records survive restarts of the gateway and of the
Docker engine itself."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LabHandle
from tests.e2e.dnsclient import wait_for

BASE = "onebox/base:bookworm"
PIDFILE = Path("/var/run/docker.pid")


def wait_for_engine(engine: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            engine.client.ping()
            return
        except Exception:
            time.sleep(0.5)
    raise AssertionError("the Docker engine did not come back; see /var/log/onebox/dockerd.log")


def test_gateway_restart_keeps_addresses_and_records_come_back(lab: LabHandle, engine: Any) -> None:
    made = lab.cli("machine", "create", "steady", "--image", BASE, "--json").json()
    engine.client.containers.get(f"{lab.name}_gateway").restart(timeout=5)
    assert wait_for(f"steady.{lab.domain}", lab.dns_port, [made["ip"]], 30) == [made["ip"]]
    assert lab.cli("machine", "show", "steady", "--json").json()["ip"] == made["ip"]
    lab.cli("machine", "rm", "steady")


@pytest.mark.skipif(not PIDFILE.exists(), reason="dockerd was not started by onebox's setup")
@pytest.mark.skipif(
    os.environ.get("ONEBOX_SKIP_ENGINE_RESTART") == "1",
    reason="ONEBOX_SKIP_ENGINE_RESTART=1: others share this engine",
)
def test_dockerd_restart_keeps_addresses_and_records_come_back(lab: LabHandle, engine: Any) -> None:
    made = lab.cli("machine", "create", "survivor", "--image", BASE, "--json").json()
    pid = int(PIDFILE.read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    log = open("/var/log/onebox/dockerd.log", "ab")  # noqa: SIM115 - handed to dockerd
    subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    wait_for_engine(engine)
    assert wait_for(f"survivor.{lab.domain}", lab.dns_port, [made["ip"]], 60) == [made["ip"]]
    shown = lab.cli("machine", "show", "survivor", "--json").json()
    assert shown["ip"] == made["ip"] and shown["state"] == "running"
    lab.cli("machine", "rm", "survivor")
