"""What decoding reserves against what it takes: peak RSS of one decode in a fresh process.

    .venv/bin/python -m benchmarks.decode_memory

Prints a Markdown table of the cases tests/gateway/test_decode_memory.py checks.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.gateway.test_decode_memory import CASES, measure


def main() -> None:
    print("| upload | measured peak (MiB) | reserved (MiB) |\n|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for name, make in CASES.items():
            result = measure(make(), Path(scratch) / "upload")
            print(f"| {name} | {result['peak'] / 2**20:.1f} | {result['reserved'] / 2**20:.1f} |")


if __name__ == "__main__":
    main()
