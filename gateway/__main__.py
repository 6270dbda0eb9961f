"""Serve the gateway with waitress: ``python -m gateway`` (configuration from the environment).

SIGTERM drains: /readyz turns 503 at once so load balancers stop sending, requests in flight (and
any that still arrive) finish for up to SHUTDOWN_GRACE_S seconds, then the process exits.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from common.allocator import return_large_blocks_to_the_os
from common.logs import log_json_to_stdout
from gateway import create_app
from gateway.service import Service
from gateway.settings import Settings, SettingsError
from gateway.wsgi_server import create_server, start_probe_server

log = logging.getLogger("gateway")


class _Drained(SystemExit):
    """Raised in the main thread once draining is over, to leave ``server.run()``. A SystemExit,
    because waitress re-raises only SystemExit and KeyboardInterrupt from its channels' callbacks
    (waitress 3.0.2 wasyncore.py:94-103, read()) and swallows anything else, as happens when the signal lands
    while the main thread is closing a connection."""


def main() -> int:
    log_json_to_stdout()
    return_large_blocks_to_the_os()
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    app = create_app(service=Service.build(settings))
    service = app.extensions["classifier"]
    try:
        server = create_server(app, settings)
    except OSError as exc:
        print(f"gateway: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 2
    try:
        probe_server = start_probe_server(app, settings)
    except OSError as exc:
        print(f"gateway: cannot listen on {settings.host}:{settings.probe_port} (PROBE_PORT): {exc}", file=sys.stderr)
        server.close()
        return 2

    drained = threading.Event()
    main_thread = threading.get_ident()

    def drain_then_exit() -> None:
        if service.in_flight.wait_idle(settings.shutdown_grace_s):
            log.info("drained")
        else:
            log.info("grace period over with %d requests in flight", service.in_flight.count)
        drained.set()
        # A real signal (not _thread.interrupt_main(), a no-op while SIGINT is ignored as under nohup
        # or `&` in a script) wakes the main thread from select() and runs on_sigterm there.
        signal.pthread_kill(main_thread, signal.SIGTERM)

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        if drained.is_set():
            raise _Drained
        if not service.draining.is_set():
            log.info("SIGTERM: draining for up to %.1f s", settings.shutdown_grace_s)
            service.draining.set()
            threading.Thread(target=drain_then_exit, name="drain", daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    backends = ", ".join(f"{b.role} {b.model} at {b.url}" for b in settings.backends)
    log.info("gateway listening on %s:%s; %s", settings.host, server.effective_port, backends)
    if probe_server is not None:
        log.info("probes (/healthz, /readyz, /metrics) also on %s:%s", settings.host, probe_server.effective_port)
    try:
        server.run()
    except (KeyboardInterrupt, _Drained):
        pass
    finally:
        server.close()
        if probe_server is not None:
            probe_server.close()
        service.close()
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
