"""The healthchecks our deployments run (compose.yaml's gateways, the image's HEALTHCHECK) keep passing
while slow and saturating clients hold the main port: each command runs, as written, against a real
gateway whose ports are the ones the deployment's environment gives the gateway's settings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
import yaml

from gateway.settings import Settings
from tests.conftest import REPO
from tests.gateway.conftest import saturated
from tests.gateway.fakes import GATEWAY_ENV
from tests.k8s.kompose_model import interpolate, seconds

Deployment = tuple[dict[str, str], list[str], float]  # environment, healthcheck argv, its timeout (s)


def compose_service(name: str) -> Deployment:
    service = yaml.safe_load((REPO / "compose.yaml").read_text())["services"][name]
    env = {key: str(value) for key, value in interpolate(service["environment"]).items()}
    healthcheck = service["healthcheck"]
    assert healthcheck["test"][0] == "CMD"
    return env, healthcheck["test"][1:], float(seconds(healthcheck["timeout"]))


def image_healthcheck() -> Deployment:
    """The gateway stage of the Dockerfile: its ENV and its HEALTHCHECK's exec form."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    stage = text.split("FROM runtime AS gateway", 1)[1].split("\nFROM ", 1)[0]
    env: dict[str, str] = {}
    for line in re.findall(r"^ENV (.+)$", stage, re.MULTILINE):
        env.update(pair.split("=", 1) for pair in line.split())
    (options, command) = re.findall(r"^HEALTHCHECK (.*?)CMD (\[.*\])$", stage, re.MULTILINE)[0]
    timeout = re.search(r"--timeout=(\w+)", options)
    return env, json.loads(command), float(seconds(timeout[1] if timeout else "30s"))


DEPLOYMENTS: dict[str, Callable[[], Deployment]] = {
    "compose-gateway": lambda: compose_service("gateway"),
    "compose-gateway-fallback": lambda: compose_service("gateway-fallback"),
    "image": image_healthcheck,
}


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_the_healthcheck_passes_while_the_main_port_is_saturated(name, servers, jpeg):
    env, argv, timeout_s = DEPLOYMENTS[name]()
    deployed = Settings.from_env({**GATEWAY_ENV, **env})
    main_port, probe_port = servers
    ports = {deployed.port: main_port} | ({deployed.probe_port: probe_port} if deployed.probe_port else {})

    def here(match: re.Match) -> str:
        assert int(match[1]) in ports, f"the healthcheck asks port {match[1]}; the gateway listens on {set(ports)}"
        return f"127.0.0.1:{ports[int(match[1])]}"

    command = [sys.executable if arg == "python" else re.sub(r"127\.0\.0\.1:(\d+)", here, arg) for arg in argv]
    run_env = {**os.environ, **env, "PORT": str(main_port)}
    run_env["PROBE_PORT"] = str(probe_port) if deployed.probe_port else ""
    with saturated(main_port, jpeg):
        started = time.monotonic()
        result = subprocess.run(command, env=run_env, capture_output=True, text=True, timeout=timeout_s + 10)
        took = time.monotonic() - started
    assert result.returncode == 0, f"{name}: the healthcheck failed under load: {result.stderr[-500:]}"
    assert took < timeout_s, f"{name}: the healthcheck took {took:.1f} s, over its {timeout_s} s timeout"
