"""tools/certificates: the CLI's files are what a server and a client can use together."""

from __future__ import annotations

import ssl
import subprocess
import sys

from cryptography import x509

from models.server import tls
from tests.conftest import REPO


def test_cli_writes_a_ca_server_configs_and_client_certificates(tmp_path):
    out = tmp_path / "certs"
    arguments = f"--out {out} --server primary --server fallback --client gateway --days 7".split()
    subprocess.run([sys.executable, "-m", "tools.certificates", *arguments], cwd=REPO, check=True, timeout=60)
    for name in ("ca", "primary", "fallback", "gateway"):
        assert (out / f"{name}.key").stat().st_mode & 0o077 == 0, f"{name}.key is readable by others"
    primary = x509.load_pem_x509_certificate((out / "primary.crt").read_bytes())
    names = primary.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["primary", "localhost"]
    assert 6 <= (primary.not_valid_after_utc - primary.not_valid_before_utc).days <= 8
    config = tls.read(out / "primary.ssl_config").config
    assert config.client_verify and config.custom_ca == (out / "ca.crt").read_text()
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(out / "ca.crt")
    client.load_cert_chain(out / "gateway.crt", out / "gateway.key")  # the key matches its certificate
    assert client.cert_store_stats()["x509_ca"] == 1
