"""TLS from TF-Serving's ``--ssl_config_file`` (here SSL_CONFIG_FILE): gRPC and REST credentials.

The file is a text-format ``tensorflow.serving.SSLConfig`` holding PEM text. As in TF-Serving
(model_servers/server.cc, BuildServerCredentials), ``client_verify`` requires and verifies a client
certificate against ``custom_ca``. Unlike TF-Serving, a changed file is picked up without a
restart: each new connection's handshake checks the file's modification time and, when it changed
and still parses, uses the new key and certificate (gRPC's dynamic credentials ask on every
handshake; the REST relay builds a new ``ssl.SSLContext``). Connections already open keep theirs.

Writing the file from PEM files (a cert-manager Secret), once or whenever they change:

    python -m models.server.tls --key tls.key --cert tls.crt --ca ca.crt --out ssl_config [--every 60]
"""

from __future__ import annotations

import argparse
import logging
import os
import ssl
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf import text_format

from common.environment import SettingsError
from protocol.generated.tfs_ssl_config_pb2 import SSLConfig
from protocol.ssl_config import render

log = logging.getLogger(__name__)
VARIABLE = "SSL_CONFIG_FILE"


@dataclass(frozen=True)
class TlsFiles:
    """One parsed SSL_CONFIG_FILE and the modification time it was read at."""

    config: SSLConfig
    mtime_ns: int

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # load_cert_chain reads files only: hand it the PEM through a private temporary file.
        with tempfile.TemporaryDirectory(prefix="ssl-") as private:
            chain = Path(private) / "server.pem"
            chain.touch(mode=0o600)
            chain.write_text(self.config.server_key + "\n" + self.config.server_cert)
            context.load_cert_chain(chain)
        if self.config.custom_ca:
            context.load_verify_locations(cadata=self.config.custom_ca)
        if self.config.client_verify:
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def grpc_certificates(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(self.config.server_key.encode(), self.config.server_cert.encode())],
            root_certificates=self.config.custom_ca.encode() or None,
        )


def read(path: Path) -> TlsFiles:
    """Parse and check the file; a SettingsError names SSL_CONFIG_FILE and what is wrong."""
    try:
        mtime = path.stat().st_mtime_ns
        config = text_format.Parse(path.read_text(), SSLConfig())
    except OSError as exc:
        raise SettingsError(f"{VARIABLE}={path}: cannot read it ({exc.strerror})") from None
    except text_format.ParseError as exc:
        raise SettingsError(f"{VARIABLE}={path}: not a text-format tensorflow.serving.SSLConfig ({exc})") from None
    if not config.server_key or not config.server_cert:
        raise SettingsError(f"{VARIABLE}={path}: server_key and server_cert (PEM text) are required")
    if config.client_verify and not config.custom_ca:
        raise SettingsError(f"{VARIABLE}={path}: client_verify needs custom_ca, the CA client certificates chain to")
    files = TlsFiles(config, mtime)
    try:
        files.ssl_context()
    except ssl.SSLError as exc:
        raise SettingsError(f"{VARIABLE}={path}: the key, certificate or CA does not load ({exc.reason})") from None
    return files


class ReloadingTls:
    """The current TLS material of SSL_CONFIG_FILE, re-read when the file changes."""

    def __init__(self, path: Path):
        self.path = path
        self._current = read(path)
        self._context = self._current.ssl_context()
        self._generation = 0  # counts reloads, so gRPC and REST each notice every one
        self._lock = threading.Lock()

    @property
    def client_verify(self) -> bool:
        return self._current.config.client_verify

    def _refresh(self) -> None:
        """Re-read a changed file; keep serving the old material when the new one is broken."""
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except OSError:
            return
        if mtime == self._current.mtime_ns:
            return
        try:
            fresh = read(self.path)
        except SettingsError as exc:
            log.error("keeping the previous certificate: %s", exc)
            self._current = TlsFiles(self._current.config, mtime)  # report a broken file once
            return
        if fresh.config.client_verify != self._current.config.client_verify:
            log.error("%s: a change of client_verify takes a restart; the new certificate is used", VARIABLE)
        self._current, self._context = fresh, fresh.ssl_context()
        self._generation += 1
        log.info("%s changed: new connections use the new certificate", VARIABLE)

    def ssl_context(self) -> ssl.SSLContext:
        with self._lock:
            self._refresh()
            return self._context

    def grpc_credentials(self) -> grpc.ServerCredentials:
        seen = [self._generation]

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            with self._lock:
                self._refresh()
                if self._generation == seen[0]:
                    return None
                seen[0] = self._generation
                return self._current.grpc_certificates()

        with self._lock:
            initial = self._current.grpc_certificates()
            # grpc calls fetch() before each handshake; None keeps the current certificate.
            return grpc.dynamic_ssl_server_credentials(
                initial,
                fetch,  # type: ignore[arg-type]  # grpc's docstring: "or None for no change"; its stub omits None
                require_client_authentication=self.client_verify,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m models.server.tls", description="Write SSL_CONFIG_FILE from PEM files."
    )
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--ca", type=Path, help="CA of client certificates: sets client_verify")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--every", type=float, default=0, help="rewrite when the inputs change, checking every N s")
    args = parser.parse_args(argv)
    written = ""
    while True:
        try:
            text = render(args.key.read_text(), args.cert.read_text(), args.ca.read_text() if args.ca else None)
        except OSError as exc:
            print(f"models.server.tls: {exc}", file=sys.stderr)
            if not args.every:
                return 2
            text = written
        if text != written:
            partial = args.out.with_name(f".{args.out.name}.tmp")
            partial.touch(mode=0o600)
            partial.write_text(text)
            partial.replace(args.out)  # readers never see half a file
            written = text
            print(f"models.server.tls: wrote {args.out}", flush=True)
        if not args.every:
            return 0
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
