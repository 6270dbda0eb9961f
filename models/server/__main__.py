"""Run the model server: ``MODEL_NAME=... MODEL_BASE_PATH=... python -m models.server``.

gRPC on GRPC_PORT (8500) and REST on REST_PORT (8501) start at once and answer UNAVAILABLE /
LOADING until the model is loaded and warmed up, as TF-Serving does. SIGTERM or SIGINT stops
accepting work, lets in-flight calls finish for up to SHUTDOWN_GRACE_S seconds, then exits.
"""

from __future__ import annotations

import _thread
import logging
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from common.allocator import return_large_blocks_to_the_os
from common.http_server import create_server
from common.logs import log_json_to_stdout
from common.memory_budget import MemoryBudget
from models.server.grpc_service import create_grpc_server
from models.server.instrumentation import instrument_rest
from models.server.rest import create_rest_app
from models.server.settings import Settings, SettingsError
from models.server.tls import ReloadingTls
from models.server.tls_relay import TlsRelay
from models.server.versions import ModelVersions, read_model_config, single_model, watch

log = logging.getLogger("models.server")


def request_threads(settings: Settings) -> int:
    """Threads per protocol. Each request holds one until answered, so with batching a batch can
    only fill if more requests than max_batch_size are in flight (TF-Serving's advice,
    session_bundle_config.proto:156-157: max_batch_size * 2 client threads)."""
    threads = max(4, settings.interpreters * 2)
    if settings.batching is not None:
        threads = max(threads, min(2 * settings.batching.max_batch_size, 256))
    return threads


def main() -> int:
    log_json_to_stdout()
    return_large_blocks_to_the_os()
    try:
        settings = Settings.from_env()
        tls = ReloadingTls(settings.ssl_config_file) if settings.ssl_config_file else None
        policy = read_model_config(settings.model_config_file) if settings.model_config_file else single_model(settings)
    except SettingsError as exc:
        print(f"models.server: {exc}", file=sys.stderr)
        return 2
    versions = ModelVersions(settings, policy)
    workers = request_threads(settings)
    grpc_server = create_grpc_server(versions, workers=workers, max_message_bytes=settings.max_request_bytes)
    private = tempfile.TemporaryDirectory(prefix="models-server-")
    relay: TlsRelay | None = None
    try:
        grpc_address = f"{settings.host}:{settings.grpc_port}"
        if tls is None:
            grpc_port = grpc_server.add_insecure_port(grpc_address)
            listen: dict = {"host": settings.host, "port": settings.rest_port}
        else:
            grpc_port = grpc_server.add_secure_port(grpc_address, tls.grpc_credentials())
            listen = {"unix_socket": str(Path(private.name) / "rest.sock"), "unix_socket_perms": "600"}
            relay = TlsRelay(tls, settings.host, settings.rest_port, Path(listen["unix_socket"]))
        rest_app = create_rest_app(
            versions, settings.max_request_bytes, MemoryBudget(settings.memory_budget_bytes), settings.memory_wait_s
        )
        instrument_rest(rest_app, versions.metrics, settings.prometheus_path)
        rest_server = create_server(
            rest_app,
            lambda _code, message: {"error": message},
            threads=workers,
            ident="models.server",
            max_request_body_size=settings.max_request_bytes,
            header_timeout_s=10,
            read_timeout_s=60,
            asyncore_use_poll=True,
            **listen,
        )
    except (RuntimeError, OSError) as exc:
        print(
            f"models.server: cannot listen on {settings.host} ports {settings.grpc_port}/{settings.rest_port}: {exc}",
            file=sys.stderr,
        )
        return 2

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # unwinds waitress's loop in the main thread

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    stop_polling = threading.Event()
    failure: list[str] = []

    def load_then_watch() -> None:
        try:
            versions.poll()
        except SettingsError as exc:
            failure.append(str(exc))
        if failure or not versions.ready:
            log.critical(
                "exiting: %s",
                failure[0] if failure else versions.error or f"no numeric version folder under {policy.base_path}",
            )
            failure.append("no version")
            _thread.interrupt_main()
            return
        watch(versions, settings, stop_polling)

    grpc_server.start()
    if relay is not None:
        relay.start()
    log.info(
        "serving %s: gRPC on %s:%s, REST on %s:%s%s",
        policy.name,
        settings.host,
        grpc_port,
        settings.host,
        relay.port if relay else rest_server.effective_port,
        f" (TLS, client certificates {'required' if tls and tls.client_verify else 'not asked'})" if tls else "",
    )
    try:
        threading.Thread(
            target=load_then_watch, name="versions", daemon=True
        ).start()  # inside: it may interrupt at once
        rest_server.run()
    except KeyboardInterrupt:
        pass
    finally:
        log.info("shutting down")
        stop_polling.set()
        grpc_server.stop(settings.shutdown_grace_s).wait()
        rest_server.close()
        if relay is not None:
            relay.close()
        private.cleanup()
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
