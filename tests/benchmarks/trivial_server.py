"""A stand-in for a classification server in the benchmark harness's tests: POST answers 200 after
burning ``BURN_MS`` of CPU in its thread; with ``CHILD_MB`` it first starts a child process that
holds that much touched memory and burns CPU while the server lives, so a process tree has two members.

    python -m tests.benchmarks.trivial_server PORT BURN_MS CHILD_MB
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The child burns CPU until its parent is gone (SIGKILL included), and 60 s at most.
CHILD = """
import os, time
parent, end = os.getppid(), time.monotonic() + 60
held = bytearray({mb} << 20)
held[::4096] = b"x" * len(held[::4096])
while os.getppid() == parent and time.monotonic() < end:
    time.sleep(0.01)
    sum(range(200000))
"""


def burn(ms: float) -> None:
    end = time.thread_time() + ms / 1000
    while time.thread_time() < end:
        pass


def main() -> None:
    port, burn_ms, child_mb = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(mb=child_mb)]) if child_mb else None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer(200, b"ok")

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            burn(burn_ms)
            self._answer(200, b'{"predictions": []}')

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so that the child is killed below
    try:
        ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
    finally:
        if child:
            child.kill()
            child.wait()


if __name__ == "__main__":
    main()
