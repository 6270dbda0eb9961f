"""Print one category of Pipfile.lock as a pip requirements file with hashes (stdlib only).

    python lock_requirements.py Pipfile.lock gateway > requirements.txt
    pip install --require-hashes --no-deps -r requirements.txt

Docker builds use it through install_locked.sh, so images install exactly the locked versions
without installing pipenv.
"""

from __future__ import annotations

import json
import sys


def requirements(lock: dict, category: str) -> list[str]:
    section = {"packages": "default", "dev-packages": "develop"}.get(category, category)
    if section not in lock:
        raise SystemExit(f"lock_requirements: no category {category!r} in the lock")
    lines = []
    for name, entry in sorted(lock[section].items()):
        line = f"{name}{entry['version']}"
        if entry.get("markers"):
            line += f" ; {entry['markers']}"
        lines.append(line + "".join(f" \\\n    --hash={digest}" for digest in entry.get("hashes", [])))
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        print("\n".join(requirements(json.load(handle), argv[2])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
