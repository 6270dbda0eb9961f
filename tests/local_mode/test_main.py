"""`python -m local_mode` brings up model servers and the gateway, and Ctrl-C takes them down."""

import signal

import psutil
import requests

from local_mode.processes import Service, free_port, wait_until
from tests.real_weights import CAT_CLASSES


def start(tmp_path, *args):
    port = free_port()
    service = Service(["-m", "local_mode", "--port", str(port), *args], {}, tmp_path / "local.log").start()
    # Its gateway answers before local_mode has seen it answer and printed "ready on"; on a loaded
    # machine a stop signal sent in between ended local_mode before it said so, and the check of its
    # log failed. Wait for what a user waits for: the line.
    wait_until(lambda: "local_mode: ready on" in service.log(), 240, "local mode says ready", service.process)
    wait_until(
        lambda: requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).ok, 30, "local mode ready", service.process
    )
    return service, f"http://127.0.0.1:{port}"


def stop_and_check_children(service, sig=signal.SIGINT):
    children = psutil.Process(service.process.pid).children(recursive=True)
    assert len(children) >= 2, "model server(s) and gateway run as children"
    assert service.stop(sig) == 0
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert "local_mode: ready on" in service.log() and "curl -F file=@photo.jpg" in service.log()


def test_exports_primary_and_fallback(exported_models, tmp_path, shared_dir):
    service, url = start(tmp_path, "--models", str(exported_models))
    try:
        with open(shared_dir / "images" / "coffee.jpg", "rb") as photo:
            body = requests.post(f"{url}/classify", files={"file": photo}, timeout=10).json()
        assert body["model"] == "wide_resnet50_2" and body["fallback"] is False
        backends = requests.get(f"{url}/readyz").json()["backends"]
        assert backends["fallback"]["model"] == "mobilenet_v3_large"
    finally:
        stop_and_check_children(service)


def test_any_tflite_as_the_fallback(tmp_path, shared_dir):
    model = shared_dir / "models" / "efficientnet-lite0" / "model.tflite"
    service, url = start(tmp_path, "--no-primary", "--fallback-tflite", str(model))
    try:
        with open(shared_dir / "images" / "chelsea.jpg", "rb") as photo:
            body = requests.post(f"{url}/classify", files={"file": photo}, timeout=10).json()
        assert body["fallback"] is True and body["model"] == "model"
        assert body["predictions"][0]["index"] in CAT_CLASSES
    finally:
        # SIGTERM (timeout, kill, a process manager) used to leave the children running as orphans.
        stop_and_check_children(service, signal.SIGTERM)


def test_bad_arguments_fail_at_once(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    result = subprocess.run(
        [sys.executable, "-m", "local_mode", "--fallback-tflite", str(tmp_path / "none.tflite")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "no such file" in result.stderr
    assert "ready" not in result.stdout


def _local_mode(tmp_path, *args, **env):
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    return subprocess.run(
        [sys.executable, "-m", "local_mode", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path), **env},
    )


def test_imagenet_weights_offline_fail_with_one_clear_line(tmp_path):
    """Offline is forced with a proxy that refuses connections (the weights cache is an empty HOME)."""
    closed = f"http://127.0.0.1:{free_port()}"
    result = _local_mode(
        tmp_path,
        "--weights",
        "imagenet",
        "--models",
        str(tmp_path / "models"),
        https_proxy=closed,
        HTTPS_PROXY=closed,
        no_proxy="",
        NO_PROXY="",
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot download ImageNet weights" in lines[0] and "--weights random" in lines[0]
    assert "with imagenet weights" in result.stdout and "ready" not in result.stdout


def test_exports_with_other_weights_are_not_used(tmp_path):
    manifest = tmp_path / "models" / "wide_resnet50_2" / "1" / "manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text('{"weights": {"source": "random", "seed": 0}}')
    result = _local_mode(tmp_path, "--weights", "imagenet", "--models", str(tmp_path / "models"))
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"local_mode: {manifest.parent} has random weights, not imagenet; choose another --models"
    )
