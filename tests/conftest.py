"""Fixtures shared by every test package: exported models, the shared photos, torch on demand."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
TORCH_TARGET = REPO / ".cache" / "torch"
TORCH_VERSION = "2.13.0"


# What makes a test slow: a real process, a model export, TensorFlow or torch, a container or nginx.
SLOW_FIXTURES = {"exported_models", "efficientnet", "torch", "tfserving_api"}
SLOW_PACKAGES = {"chaos", "compose", "fuzz", "ingress", "local_mode", "tfserving"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the slow tests ``slow`` (``scripts/test.sh -m "not slow"`` skips them; CI runs all)."""
    for item in items:
        package = item.path.relative_to(REPO / "tests").parts[0]
        if package in SLOW_PACKAGES or SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


def tracked_files(*patterns: str) -> list[str]:
    """The files git tracks that match ``patterns``: checks that list them cannot miss a new one."""
    listed = subprocess.run(["git", "ls-files", *patterns], cwd=REPO, capture_output=True, text=True, check=True)
    return listed.stdout.split()


@pytest.fixture(scope="session")
def exported_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both catalog models with seeded random weights, exported once per session (~90 s).

    CLASSIFIER_TEST_MODELS may name an existing export of the same command to save that time.
    """
    reuse = os.environ.get("CLASSIFIER_TEST_MODELS")
    if reuse:
        return Path(reuse)
    out = tmp_path_factory.mktemp("models")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "models.export",
            "--model",
            "all",
            "--weights",
            "random",
            "--seed",
            "0",
            "--out",
            str(out),
        ],
        cwd=REPO,
        check=True,
        timeout=900,
    )
    return out


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "models" / "efficientnet-lite0" / "model.tflite").exists():
        pytest.skip(f"{SHARED} (real-weights model and photos) is not beside this checkout")
    return SHARED


@pytest.fixture(scope="session")
def efficientnet(shared_dir, tmp_path_factory):
    """Our LiteRT server running the real-weights EfficientNet-Lite0 from ../shared as "efficientnet"."""
    from local_mode.processes import ModelServer, serve_tflite

    base = tmp_path_factory.mktemp("efficientnet")
    serve_tflite(base, "efficientnet", shared_dir / "models" / "efficientnet-lite0" / "model.tflite")
    with ModelServer(base, "efficientnet", base / "log") as server:
        yield server.start()


@pytest.fixture(scope="session")
def torch():
    """torch is kept out of Pipfile.lock (its resolved wheel is machine-specific): install on demand."""
    try:
        import torch as module

        return module
    except ImportError:
        pass
    if not (TORCH_TARGET / "torch").exists():
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", str(TORCH_TARGET), f"torch=={TORCH_VERSION}"],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if result.returncode != 0:
            pytest.skip(f"torch=={TORCH_VERSION} could not be installed: {result.stderr.strip()[-300:]}")
    sys.path.append(str(TORCH_TARGET))
    import torch as module

    return module


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory):
    """Certificates for mutual TLS on 127.0.0.1: a CA, its server and client certificates, an
    expired client certificate, and a client certificate from another CA."""
    import datetime
    from types import SimpleNamespace

    from tools.certificates import issue, make_ca, ssl_config_text

    out = tmp_path_factory.mktemp("pki")
    ca, stranger_ca = make_ca(), make_ca("someone else's CA")
    server = issue(ca, "localhost", server=True, hosts=("localhost", "127.0.0.1"))
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
    files = SimpleNamespace(ca_issued=ca, server_issued=server, dir=out)
    files.ca = out / "ca.crt"
    files.ca.write_bytes(ca.cert_pem)
    files.stranger_ca = out / "stranger-ca.crt"
    files.stranger_ca.write_bytes(stranger_ca.cert_pem)
    files.server_cert, files.server_key = server.write(out, "server")
    files.client = issue(ca, "gateway", server=False).write(out, "client")
    files.expired = issue(
        ca, "gateway", server=False, not_before=long_ago, not_after=long_ago + datetime.timedelta(days=1)
    ).write(out, "expired")
    files.untrusted = issue(stranger_ca, "gateway", server=False).write(out, "untrusted")
    files.ssl_config = out / "server.ssl_config"
    files.ssl_config.write_text(ssl_config_text(server, ca))
    return files
