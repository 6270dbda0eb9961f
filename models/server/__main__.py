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
import threading
from types import FrameType

from common.allocator import return_large_blocks_to_the_os
from common.http_server import create_server
from common.logs import log_json_to_stdout
from models.server.grpc_service import create_grpc_server
from models.server.instrumentation import instrument_rest
from models.server.model import LiteRTModel
from models.server.rest import create_rest_app
from models.server.settings import Settings, SettingsError

log = logging.getLogger("models.server")


def main() -> int:
    log_json_to_stdout()
    return_large_blocks_to_the_os()
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"models.server: {exc}", file=sys.stderr)
        return 2
    model = LiteRTModel(settings)
    workers = max(4, settings.interpreters * 2)
    grpc_server = create_grpc_server(model, workers=workers, max_message_bytes=settings.max_request_bytes)
    try:
        grpc_port = grpc_server.add_insecure_port(f"{settings.host}:{settings.grpc_port}")
        rest_app = create_rest_app(model, settings.max_request_bytes)
        instrument_rest(rest_app, model.metrics, settings.prometheus_path)
        rest_server = create_server(
            rest_app,
            lambda _code, message: {"error": message},
            host=settings.host,
            port=settings.rest_port,
            threads=workers,
            ident="models.server",
            max_request_body_size=settings.max_request_bytes,
            header_timeout_s=10,
            read_timeout_s=60,
            asyncore_use_poll=True,
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

    def load() -> None:
        try:
            model.load()
        except Exception:
            log.critical("exiting: the model could not be loaded")
            _thread.interrupt_main()

    grpc_server.start()
    log.info(
        "serving %s: gRPC on %s:%s, REST on %s:%s",
        settings.model_name,
        settings.host,
        grpc_port,
        settings.host,
        rest_server.effective_port,
    )
    try:
        threading.Thread(target=load, name="load", daemon=True).start()  # inside: it may interrupt at once
        rest_server.run()
    except KeyboardInterrupt:
        pass
    finally:
        log.info("shutting down")
        grpc_server.stop(settings.shutdown_grace_s).wait()
        rest_server.close()
    return 1 if model.error else 0


if __name__ == "__main__":
    sys.exit(main())
