"""Each peer's virtualenv under .cache/, created from its pinned requirements file (exact versions of
every package, from ``pip freeze``) and recreated only when that file changes. torch and BentoML
stay out of Pipfile.lock: they are benchmark fixtures, not dependencies of the service."""

from __future__ import annotations

import hashlib
import subprocess
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE.parent.parent / ".cache"
TORCH = (CACHE / "peer-venv", HERE / "requirements-torch.txt")
BENTO = (CACHE / "bento-venv", HERE / "requirements-bento.txt")


def ensure(folder: Path, requirements: Path) -> Path:
    """The virtualenv's python, after installing ``requirements`` into it if it was not done yet."""
    python = folder / "bin" / "python"
    marker = folder / "requirements.sha256"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if python.exists() and marker.exists() and marker.read_text() == digest:
        return python
    print(f"peer: creating {folder} from {requirements.name} (a few minutes, once)", flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(folder)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True, timeout=1800)
    marker.write_text(digest)
    return python
