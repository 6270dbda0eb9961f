"""A local CA and the certificates for mutual TLS between the gateway and the model servers.

    python -m tools.certificates --out certs --server primary --server fallback --client gateway

writes ``ca.crt`` (and ``ca.key``), for each server ``<name>.crt``/``<name>.key`` plus
``<name>.ssl_config`` (TF-Serving's --ssl_config_file text format, ``client_verify: true``), and for
each client ``<name>.crt``/``<name>.key``. Server certificates name the server and ``localhost``
and ``127.0.0.1``. For development and tests only: a cluster gets its certificates from
cert-manager (k8s/components/mtls).
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from protocol.ssl_config import render

DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, PEM-encoded."""

    cert_pem: bytes
    key_pem: bytes

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        cert, key = directory / f"{name}.crt", directory / f"{name}.key"
        cert.write_bytes(self.cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(self.key_pem)
        return cert, key


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Issued:
    return Issued(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


def make_ca(common_name: str = "classifier local CA", days: int = 365) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - DAY)
        .not_valid_after(_now() + days * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return _pem(cert, key)


def issue(
    ca: Issued,
    common_name: str,
    *,
    server: bool,
    hosts: tuple[str, ...] = (),
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> Issued:
    """A leaf certificate signed by ``ca``: for a server (``hosts`` as DNS names or IPs) or a client."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    # A server's certificate may also act as a client: its own health checks show it to itself.
    usages = (
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        if server
        else [ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    names: list[x509.GeneralName] = []
    for host in hosts or (common_name,):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or _now() - DAY)
        .not_valid_after(not_after or _now() + 90 * DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _pem(cert, key)


def ssl_config_text(server: Issued, client_ca: Issued | None) -> str:
    """TF-Serving's SSLConfig in text format: the server's key and certificate, and with
    ``client_ca`` the CA client certificates must chain to (``client_verify: true``)."""
    return render(server.key_pem.decode(), server.cert_pem.decode(), client_ca.cert_pem.decode() if client_ca else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.certificates", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="directory to write into (created)")
    parser.add_argument("--server", action="append", default=[], help="a model server's host name (repeatable)")
    parser.add_argument("--client", action="append", default=[], help="a client's name (repeatable)")
    parser.add_argument("--days", type=int, default=90, help="validity of the leaf certificates")
    args = parser.parse_args(argv)
    if not args.server and not args.client:
        parser.error("name at least one --server or --client")
    args.out.mkdir(parents=True, exist_ok=True)
    ca = make_ca()
    ca.write(args.out, "ca")
    until = _now() + args.days * DAY
    for name in args.server:
        leaf = issue(ca, name, server=True, hosts=(name, "localhost", "127.0.0.1"), not_after=until)
        leaf.write(args.out, name)
        config = args.out / f"{name}.ssl_config"
        config.touch(mode=0o600)
        config.write_text(ssl_config_text(leaf, ca))
    for name in args.client:
        issue(ca, name, server=False, not_after=until).write(args.out, name)
    print(f"wrote {args.out}: ca.crt, " + ", ".join(f"{n}.crt" for n in args.server + args.client))
    return 0


if __name__ == "__main__":
    sys.exit(main())
