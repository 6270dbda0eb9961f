"""One JSON object per log line on stdout, as container log collectors expect."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter


def log_json_to_stdout(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
