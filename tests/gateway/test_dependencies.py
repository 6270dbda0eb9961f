"""The gateway never imports TensorFlow, Keras or torch, and its lock category holds none of them."""

import json
import subprocess
import sys

from tests.conftest import REPO

HEAVY = ("tensorflow", "keras", "torch", "ai_edge_litert", "jax")


def test_importing_and_building_the_gateway_loads_no_ml_framework():
    script = (
        "import sys\n"
        "from gateway import create_app\n"
        "import gateway.__main__\n"
        "create_app({'FALLBACK_URL': 'grpc://127.0.0.1:1', 'FALLBACK_MODEL': 'm'})\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_gateway_lock_category_is_light():
    lock = json.loads((REPO / "Pipfile.lock").read_text())
    packages = set(lock["gateway"])
    assert not packages & {"tensorflow", "tensorflow-cpu", "keras", "torch", "ai-edge-litert"}, packages
    assert {"flask", "waitress", "pillow", "numpy", "grpcio", "protobuf"} <= packages
