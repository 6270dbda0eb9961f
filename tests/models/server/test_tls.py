"""SSL_CONFIG_FILE (TF-Serving's --ssl_config_file): mutual TLS on gRPC and REST, refusals, rotation."""

from __future__ import annotations

import subprocess
import sys
import time

import grpc
import numpy as np
import pytest
import requests

from local_mode.processes import ModelServer, wait_until
from models.server import tls
from protocol import tensors
from protocol.generated import tfs_predict_pb2, tfs_predict_pb2_grpc
from tests.conftest import REPO
from tests.models.server.conftest import MOBILENET, run_server
from tools.certificates import issue, make_ca, ssl_config_text


@pytest.fixture(scope="module")
def tls_server(exported_models, pki, tmp_path_factory):
    log = tmp_path_factory.mktemp("tls") / "server.log"
    config = tmp_path_factory.mktemp("tls-config") / "ssl_config"
    config.write_text(pki.ssl_config.read_text())
    server = ModelServer(exported_models, MOBILENET, log, client_tls=(pki.ca, *pki.client), SSL_CONFIG_FILE=str(config))
    with server:
        server.start()
        server.config_path = config
        yield server


def _grpc_predict(server: ModelServer, ca: bytes, client: tuple | None) -> tfs_predict_pb2.PredictResponse:
    key, cert = (client[1].read_bytes(), client[0].read_bytes()) if client else (None, None)
    credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    with grpc.secure_channel(server.grpc_target, credentials) as channel:
        stub = tfs_predict_pb2_grpc.PredictionServiceStub(channel)
        request = tfs_predict_pb2.PredictRequest(
            model_spec=tfs_predict_pb2.ModelSpec(name=MOBILENET),
            inputs={"images": tensors.to_proto(np.zeros((1, 224, 224, 3), np.uint8))},
        )
        return stub.Predict(request, timeout=10)


def _rest_status(server: ModelServer, ca, client: tuple | None) -> requests.Response:
    return requests.get(
        f"{server.rest}/v1/models/{MOBILENET}",
        verify=str(ca),
        timeout=10,
        cert=(str(client[0]), str(client[1])) if client else None,
    )


def test_client_with_certificate_is_served_on_both_protocols(tls_server, pki):
    assert (
        _grpc_predict(tls_server, pki.ca.read_bytes(), pki.client).outputs["probabilities"].tensor_shape.dim[1].size
        == 1000
    )
    assert _rest_status(tls_server, pki.ca, pki.client).json()["model_version_status"][0]["state"] == "AVAILABLE"


def test_plaintext_is_refused(tls_server):
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{tls_server.rest_port}/v1/models/{MOBILENET}", timeout=5)
    with grpc.insecure_channel(tls_server.grpc_target) as channel, pytest.raises(grpc.RpcError) as caught:
        tfs_predict_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(
            tfs_predict_pb2.GetModelMetadataRequest(
                model_spec=tfs_predict_pb2.ModelSpec(name=MOBILENET), metadata_field=["signature_def"]
            ),
            timeout=5,
        )
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("client", "reason"),
    [
        (None, "PEER_DID_NOT_RETURN_A_CERTIFICATE"),
        ("untrusted", "CERTIFICATE_VERIFY_FAILED unable to get local issuer certificate"),
        ("expired", "CERTIFICATE_VERIFY_FAILED certificate has expired"),
    ],
)
def test_client_without_a_valid_certificate_is_refused_with_the_reason_logged(tls_server, pki, client, reason):
    files = getattr(pki, client) if client else None
    with pytest.raises(grpc.RpcError) as caught:
        _grpc_predict(tls_server, pki.ca.read_bytes(), files)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(requests.ConnectionError):
        _rest_status(tls_server, pki.ca, files)
    wait_until(lambda: f"refused: {reason}" in tls_server.log(), 5, f"log line naming {reason}")


def test_server_certificate_rotates_without_restart(tls_server, pki):
    """New connections get the certificate written into SSL_CONFIG_FILE; the process stays the same."""
    pid = tls_server.process.pid
    new_ca = make_ca("rotated CA")
    rotated = issue(new_ca, "localhost", server=True, hosts=("localhost", "127.0.0.1"))
    new_ca_file = pki.dir / "rotated-ca.crt"
    new_ca_file.write_bytes(new_ca.cert_pem)
    original = tls_server.config_path.read_text()
    try:
        tls_server.config_path.write_text(ssl_config_text(rotated, pki.ca_issued))  # clients still from pki.ca
        assert _rest_status(tls_server, new_ca_file, pki.client).ok
        assert _grpc_predict(tls_server, new_ca.cert_pem, pki.client).model_spec.name == MOBILENET
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            _rest_status(tls_server, pki.ca, pki.client)
        tls_server.config_path.write_text("server_key: 'broken'")
        time.sleep(0.01)  # a distinct modification time on coarse file systems
        assert _rest_status(tls_server, new_ca_file, pki.client).ok, "a broken file keeps the last good certificate"
        assert "keeping the previous certificate" in tls_server.log()
    finally:
        tls_server.config_path.write_text(original)
    assert _rest_status(tls_server, pki.ca, pki.client).ok
    assert tls_server.process.pid == pid and tls_server.process.poll() is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read it"),
        ("server_key: 1 2", "not a text-format tensorflow.serving.SSLConfig"),
        ("client_verify: true", "server_key and server_cert (PEM text) are required"),
        ("wrong_ca", "the key, certificate or CA does not load"),
        ("no_ca", "client_verify needs custom_ca"),
    ],
)
def test_bad_ssl_config_file_fails_start_with_one_line(tmp_path, pki, content, message):
    path = tmp_path / "ssl_config"
    if content == "wrong_ca":  # the server's key with another certificate
        content = ssl_config_text(pki.server_issued, None).replace(
            pki.server_issued.cert_pem.decode().replace("\n", "\\n"),
            pki.ca_issued.cert_pem.decode().replace("\n", "\\n"),
        )
    elif content == "no_ca":
        content = ssl_config_text(pki.server_issued, None) + "client_verify: true\n"
    if content is not None:
        path.write_text(content)
    result = run_server({"MODEL_NAME": MOBILENET, "MODEL_BASE_PATH": str(tmp_path), "SSL_CONFIG_FILE": str(path)})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"models.server: SSL_CONFIG_FILE={path}: {message}")


def test_ssl_config_is_written_from_pem_files_and_rewritten_when_they_change(pki, tmp_path):
    """What the Kubernetes sidecar runs on a cert-manager Secret's tls.key, tls.crt and ca.crt."""
    out = tmp_path / "ssl_config"
    command = [
        sys.executable,
        "-m",
        "models.server.tls",
        "--key",
        str(pki.server_key),
        "--cert",
        str(pki.server_cert),
        "--ca",
        str(pki.ca),
        "--out",
        str(out),
    ]
    subprocess.run(command, cwd=REPO, check=True, timeout=60, capture_output=True)
    assert out.read_text() == pki.ssl_config.read_text()
    assert tls.read(out).config.client_verify
    cert = tmp_path / "tls.crt"
    cert.write_bytes(pki.server_issued.cert_pem)
    command[command.index("--cert") + 1] = str(cert)
    with subprocess.Popen([*command, "--every", "0.1"], cwd=REPO, stdout=subprocess.PIPE) as watcher:
        try:
            wait_until(lambda: out.exists() and "wrote" in (watcher.stdout.readline().decode()), 20, "first write")
            rotated = issue(pki.ca_issued, "localhost", server=True, hosts=("127.0.0.1",))
            cert.write_bytes(rotated.cert_pem)
            wait_until(
                lambda: rotated.cert_pem.decode().split("\n")[1] in out.read_text().replace("\\n", "\n"),
                10,
                "rewritten",
            )
        finally:
            watcher.terminate()
