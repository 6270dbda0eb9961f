from __future__ import annotations

import grpc
import numpy as np
import pytest

from protocol.generated import tfs_predict_pb2_grpc
from tests.processes import ModelServer

MOBILENET = "mobilenet_v3_large"


@pytest.fixture(scope="module")
def server(exported_models, tmp_path_factory):
    log = tmp_path_factory.mktemp("logs") / "server.log"
    with ModelServer(exported_models, MOBILENET, log, MAX_BATCH="4", MAX_REQUEST_BYTES=str(4 << 20)) as running:
        running.start()
        yield running


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield tfs_predict_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def reference(exported_models):
    """Direct interpreter call on the same file: what the server must return."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(exported_models / MOBILENET / "1" / "model.tflite"))
    runner = interpreter.get_signature_runner("serving_default")
    return lambda images: runner(images=images)["probabilities"]


@pytest.fixture
def images():
    return np.random.default_rng(7).integers(0, 256, size=(2, 224, 224, 3), dtype=np.uint8)


@pytest.fixture
def weights_server(tmp_path):
    """Files put in ``tmp_path / "served"`` over HTTP on 127.0.0.1; yields (folder, base URL)."""
    import http.server
    import threading
    from functools import partial

    folder = tmp_path / "served"
    folder.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
