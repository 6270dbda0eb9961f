"""Fixtures of the export tests."""

from __future__ import annotations

import pytest


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
