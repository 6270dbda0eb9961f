"""A TCP proxy on 127.0.0.1 that injects faults between the gateway and a model server.

Modes, switchable while connections are open:
  pass    - forward bytes both ways
  refuse  - cut existing connections and close new ones at once (a dead or restarting server)
  hang    - stop forwarding and never answer (a wedged server; the caller's deadline must fire)
  error   - send new connections to ``error_port`` instead, a server that fails every call
The gateway's own client is untouched: faults live on the wire.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class FaultProxy:
    def __init__(self, upstream_port: int, error_port: int | None = None):
        self.upstream = ("127.0.0.1", upstream_port)
        self.error_upstream = ("127.0.0.1", error_port) if error_port else None
        self.mode = "pass"
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set_mode(self, mode: str) -> None:
        assert mode in ("pass", "refuse", "hang", "error")
        previous, self.mode = self.mode, mode
        if mode == "refuse" or "error" in (mode, previous):
            self._cut_all()  # clients reconnect, to the new upstream for "error"

    def _cut_all(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _track(self, *conns: socket.socket) -> None:
        with self._lock:
            self._connections.update(conns)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == "refuse":
                client.close()
                continue
            if self.mode == "hang":
                self._track(client)
                threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                continue
            address = self.error_upstream if self.mode == "error" and self.error_upstream else self.upstream
            try:
                upstream = socket.create_connection(address, timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._track(client, upstream)
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _swallow(self, conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if self.mode == "hang":  # stop forwarding: the caller waits until its deadline
                    self._swallow(source)
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for conn in (source, sink):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        self._cut_all()
