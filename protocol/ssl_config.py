"""TF-Serving's SSLConfig text (--ssl_config_file, our SSL_CONFIG_FILE) written from PEM text."""

from __future__ import annotations

from google.protobuf import text_format

from protocol.generated.tfs_ssl_config_pb2 import SSLConfig


def render(server_key: str, server_cert: str, client_ca: str | None) -> str:
    """An SSLConfig in text format; with ``client_ca``, client certificates must chain to it."""
    config = SSLConfig(server_key=server_key, server_cert=server_cert)
    if client_ca:
        config.custom_ca, config.client_verify = client_ca, True
    return text_format.MessageToString(config)
