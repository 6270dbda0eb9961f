"""REST over TLS: waitress cannot speak TLS, so with SSL_CONFIG_FILE it listens on a private Unix
socket and this relay terminates TLS on REST_PORT, checks the client certificate, and copies bytes.

Each connection takes the current ``ssl.SSLContext`` at its handshake, so a rotated certificate
serves new connections at once. A refused handshake (no, untrusted or expired client certificate)
is logged with the peer and OpenSSL's reason, and the connection closed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from pathlib import Path

from models.server.tls import ReloadingTls

log = logging.getLogger(__name__)
HANDSHAKE_TIMEOUT_S = 10.0
_CHUNK = 1 << 16


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then pass the half-close on (or close, where the transport cannot: TLS)."""
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        else:
            writer.close()
    except (OSError, ssl.SSLError):  # the peer went away: nothing left to deliver
        writer.close()


class TlsRelay:
    def __init__(self, tls: ReloadingTls, host: str, port: int, upstream: Path):
        self.tls = tls
        self.upstream = upstream
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, host, port))
        self.port: int = self._server.sockets[0].getsockname()[1]
        self._thread = threading.Thread(target=self._loop.run_forever, name="tls-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            await writer.start_tls(self.tls.ssl_context(), ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S)
        except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
            reason = " ".join(filter(None, (getattr(exc, "reason", None), getattr(exc, "verify_message", None))))
            log.warning("REST TLS handshake from %s refused: %s", peer, reason or repr(exc))
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(str(self.upstream))
        except OSError as exc:
            log.error("REST relay cannot reach the HTTP server at %s: %s", self.upstream, exc)
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        up_writer.close()
        writer.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._server.close)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop.close()
