"""``python -m gateway`` as a real process: SIGTERM drains and exits, however it was started."""

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from local_mode.processes import free_port, wait_until
from tests.conftest import REPO


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_sigterm_drains_then_exits_cleanly(tmp_path, sigint):
    """Started with SIGINT ignored (nohup, or ``&`` in a script), the old code logged "drained" and
    kept listening; every clean stop also logged a "Logging error"."""
    port, probe_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PROBE_PORT": str(probe_port),
        "PRIMARY_URL": "grpc://127.0.0.1:1",
        "PRIMARY_MODEL": "m",
        "SHUTDOWN_GRACE_S": "0.5",
    }
    trap = 'trap "" INT; ' if sigint == "ignored" else ""
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", "-c", f'{trap}exec "{sys.executable}" -m gateway'],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(
                lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok, 30, "gateway alive", process
            )
            assert requests.get(f"http://127.0.0.1:{probe_port}/readyz", timeout=2).status_code == 503  # no backend
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=10)
            stopped_in = time.monotonic() - started
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = log.read_text()
    assert code == 0 and stopped_in < 3, (code, stopped_in, text[-2000:])
    assert '"drained"' in text and '"stopped"' in text
    assert "Logging error" not in text and "Traceback" not in text, text[-2000:]
