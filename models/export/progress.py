"""Progress of long command-line work (exports, downloads, starting local mode).

On a terminal one status line is redrawn in place. When stderr is a file or a pipe (logs, CI)
nothing is written at all: what a log needs is printed by the caller as before.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_REDRAW_S = 0.1


class Progress:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._drawn: float | None = None

    def update(self, text: str) -> None:
        """Redraw the status line, at most every 0.1 s."""
        now = time.monotonic()
        if self.live and (self._drawn is None or now - self._drawn >= _REDRAW_S):
            self._drawn = now
            self.stream.write(f"\r\033[K{text}")
            self.stream.flush()

    def transfer(self, what: str, done: int, total: int | None) -> None:
        if total:
            self.update(f"{what}: {done / 1e6:.1f} of {total / 1e6:.1f} MB ({100 * done / total:.0f}%)")
        else:
            self.update(f"{what}: {done / 1e6:.1f} MB")

    def end(self, text: str = "") -> None:
        """Replace the status line with ``text`` kept on screen, or just clear it."""
        if self.live:
            self.stream.write(f"\r\033[K{text}\n" if text else "\r\033[K")
            self.stream.flush()
        self._drawn = None
