"""The model server's lock category holds every distribution the server imports (its image installs
only that category, so a module it gets from another category in the dev venv would be missing)."""

import json
import subprocess
import sys

from tests.conftest import REPO

OPTIONAL = {"grpc_tools"}  # grpc/__init__.py imports it only when installed (a dev tool here)


def test_every_imported_module_comes_from_the_server_category():
    script = (
        "import importlib.metadata, json, sys\n"
        "before = set(sys.modules)\n"
        "import models.server.__main__\n"
        "owners = importlib.metadata.packages_distributions()\n"
        "top = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(json.dumps({m: owners[m] for m in sorted(top) if m in owners}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    locked = set(json.loads((REPO / "Pipfile.lock").read_text())["server"])
    normal = lambda name: name.lower().replace("_", "-")  # noqa: E731
    missing = {
        module: owners
        for module, owners in json.loads(result.stdout).items()
        if module not in OPTIONAL and not {normal(o) for o in owners} & locked
    }
    assert missing == {}, f"imported by models.server, installed by no package of Pipfile's [server]: {missing}"
