"""A stand-in for a classification server in the benchmark harness's tests: POST answers 200 after
burning ``BURN_MS`` of CPU in its thread; with ``CHILD_MB`` it first starts a child process that
holds that much touched memory and burns CPU until killed, so a process tree has two members.

    python -m tests.benchmarks.trivial_server PORT BURN_MS CHILD_MB
"""

from __future__ import annotations

import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHILD = "import time\nheld = bytearray({mb} << 20)\nheld[::4096] = b'x' * len(held[::4096])\nwhile True:\n    time.sleep(0.01)\n    sum(range(200000))\n"


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

    try:
        ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
    finally:
        if child:
            child.kill()


if __name__ == "__main__":
    main()
