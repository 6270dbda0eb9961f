"""The mutual TLS and canary components: each builds on the cpu overlay, validates for Kubernetes
1.29-1.37 (native sidecars) and against the cert-manager and Istio CRD schemas, and wires what the
processes need (SSL_CONFIG_FILE, client certificates, the model config, the canary share)."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from models.server.versions import read_model_config
from tests.conftest import REPO
from tests.k8s.test_manifests import KUBECTL, KUBERNETES_VERSIONS, VALIDATE

COMPONENTS = ["mtls", "canary", "gateway-canary", "istio-mtls", "istio-canary"]


def build(tmp_path, *components: str, overlay_name: str = "cpu") -> list[dict]:
    """An overlay (cpu unless named) with ``components`` added, as a user's overlay would list them."""
    overlay = REPO / "k8s" / "overlays" / overlay_name
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())

    def moved(path: str) -> str:
        return os.path.relpath(overlay / path, tmp_path)

    kustomization["resources"] = [moved(p) for p in kustomization["resources"]]
    kustomization["components"] = [moved(p) for p in kustomization["components"]]
    kustomization["components"] += [os.path.relpath(REPO / "k8s" / "components" / c, tmp_path) for c in components]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    result = subprocess.run(
        [KUBECTL, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def by_name(documents, kind, name):
    return next(d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.fixture(scope="module")
def everything(tmp_path_factory):
    return build(tmp_path_factory.mktemp("overlay"), *COMPONENTS)


@pytest.mark.parametrize("version", [KUBERNETES_VERSIONS[0], KUBERNETES_VERSIONS[-1]])
def test_the_components_validate_strictly(everything, tmp_path, version):
    path = tmp_path / "all.yaml"
    path.write_text(
        yaml.safe_dump_all(
            [d for d in everything if "istio" not in d["apiVersion"] and "cert-manager" not in d["apiVersion"]]
        )
    )
    result = subprocess.run(
        [VALIDATE, "--strict", "--quiet", "-k", version, str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_crd_objects_match_their_schemas(everything, validator, tmp_path):
    custom = [d for d in everything if d["apiVersion"].split("/")[0].endswith(("istio.io", "cert-manager.io"))]
    path = tmp_path / "crds.yaml"
    path.write_text(yaml.safe_dump_all(custom))
    result = validator(path)
    assert result.returncode == 0, result.stdout
    assert sorted(line.split()[2] for line in result.stdout.splitlines()) == sorted(
        [
            "Certificate/classifier-ca",
            "Certificate/fallback-tls",
            "Certificate/gateway-client-tls",
            "Certificate/primary-tls",
            "DestinationRule/gateway",
            "DestinationRule/gateway-canary",
            "Issuer/classifier-ca",
            "Issuer/classifier-selfsigned",
            "PeerAuthentication/default",
            "VirtualService/gateway",
        ]
    )


def test_the_validator_rejects_a_wrong_istio_object(validator, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: x}\n"
        "spec: {mtls: {mode: STRICTLY}}\n"
    )
    assert validator(bad).returncode == 1


def test_model_servers_run_with_ssl_config_and_gateways_present_client_certificates(everything):
    for server in ("primary", "fallback"):
        spec = by_name(everything, "Deployment", server)["spec"]["template"]["spec"]
        sidecar = next(c for c in spec["initContainers"] if c["name"] == "ssl-config")
        assert sidecar["restartPolicy"] == "Always" and sidecar["image"].startswith("ghcr.io/")
        assert "--every" in sidecar["command"] and sidecar["command"][:3] == ["python", "-m", "models.server.tls"]
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert env["SSL_CONFIG_FILE"] == "/run/tls/ssl_config"
        secret = next(v for v in spec["volumes"] if v["name"] == "tls-secret")["secret"]["secretName"]
        certificate = by_name(everything, "Certificate", secret)["spec"]
        assert server in certificate["dnsNames"] and "client auth" in certificate["usages"]
        for probe in ("readinessProbe", "livenessProbe"):
            assert "https://127.0.0.1:8501" in " ".join(spec["containers"][0][probe]["exec"]["command"])
    for gateway, roles in (("gateway", ("PRIMARY", "FALLBACK")), ("gateway-fallback", ("FALLBACK",))):
        spec = by_name(everything, "Deployment", gateway)["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        for role in roles:
            assert env[f"{role}_TLS_CA"] == "/certs/ca.crt" and env[f"{role}_TLS_KEY"] == "/certs/tls.key"
        assert any(v.get("secret", {}).get("secretName") == "gateway-client-tls" for v in spec["volumes"])


def test_the_canary_config_is_one_the_server_accepts(everything, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(by_name(everything, "ConfigMap", "primary-models")["data"]["models.config"])
    policy = read_model_config(config)
    assert policy.labels == {"stable": 1, "canary": 2} and policy.specific == {1, 2}
    primary = by_name(everything, "Deployment", "primary")["spec"]["template"]["spec"]
    copies = {c["name"]: c for c in primary["initContainers"]}
    assert str(policy.base_path / "2") in copies["canary-version"]["command"][-1]
    assert copies["canary-version"]["image"].split(":")[0] != copies["stable-version"]["image"].split(":")[0]
    gateway = by_name(everything, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "CANARY_SHARE", "value": "0.1"} in gateway["env"]


def test_gateway_canary_routes_weigh_the_new_image(everything):
    route = by_name(everything, "VirtualService", "gateway")["spec"]["http"][0]["route"]
    assert {r["destination"]["host"]: r["weight"] for r in route} == {"gateway": 90, "gateway-canary": 10}
    http_route = yaml.safe_load((REPO / "ingress" / "gateway-api" / "canary-route.yaml").read_text())
    weights = {b["name"]: b["weight"] for b in http_route["spec"]["rules"][0]["backendRefs"]}
    assert weights == {"classifier-failover": 90, "gateway-canary": 10}
    service = by_name(everything, "Service", "gateway-canary")
    deployment = by_name(everything, "Deployment", "gateway-canary")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert by_name(everything, "PeerAuthentication", "default")["spec"]["mtls"]["mode"] == "STRICT"


def test_the_canary_gateway_passes_the_network_policies(everything):
    servers = by_name(everything, "NetworkPolicy", "model-servers-from-gateways")["spec"]["ingress"][0]["from"][0]
    assert "gateway-canary" in servers["podSelector"]["matchExpressions"][0]["values"]
    gateways = by_name(everything, "NetworkPolicy", "gateways-from-ingress")["spec"]["podSelector"]
    assert "gateway-canary" in gateways["matchExpressions"][0]["values"]
