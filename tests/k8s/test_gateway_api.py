"""The Gateway API alternative validates against the CRD schemas of Gateway API and Traefik.

kubernetes-validate only warns on unknown kinds, so the CRDs are checked with the schemas that
@kubernetes-models ships (generated from the CRDs): the ``validator`` fixture in conftest.py.
"""

from tests.conftest import REPO

MANIFESTS = sorted((REPO / "ingress" / "gateway-api").glob("*.yaml"))


def test_gateway_api_and_traefik_objects_are_valid(validator):
    result = validator(*MANIFESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "VALID gateway.networking.k8s.io/v1 HTTPRoute/classifier",  # canary-route.yaml
        "VALID gateway.networking.k8s.io/v1 Gateway/classifier",
        "VALID gateway.networking.k8s.io/v1 HTTPRoute/classifier",
        "VALID traefik.io/v1alpha1 TraefikService/classifier-failover",
        "VALID traefik.io/v1alpha1 ServersTransport/classifier-timeouts",
    ]


def test_the_validator_rejects_a_wrong_object(validator, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: traefik.io/v1alpha1\nkind: TraefikService\nmetadata: {name: bad}\nspec:\n"
        "  failover:\n    service: {name: gateway, port: 8080}\n    fallback: {name: f, port: 8080}\n"
        "    errors: {status: [500]}\n"
    )
    result = validator(bad)
    assert result.returncode == 1 and "must be string" in result.stdout


def test_failover_covers_the_same_codes_and_body_size_as_the_ingress():
    import yaml

    failover = next(
        d
        for d in yaml.safe_load_all((REPO / "ingress/gateway-api/traefik.yaml").read_text())
        if d["kind"] == "TraefikService"
    )["spec"]["failover"]
    assert failover["errors"]["status"] == ["500-504"]
    assert failover["errors"]["maxRequestBodyBytes"] >= 11 << 20
    assert failover["service"]["name"] == "gateway" and failover["fallback"]["name"] == "gateway-fallback"


def test_no_health_check_on_cluster_ip_services():
    """Traefik v3.7.9 refuses a healthCheck on a non-ExternalName Service and then builds no
    TraefikService at all (kubernetes_http.go:531-533): the route would answer 404."""
    import yaml

    failover = next(
        d
        for d in yaml.safe_load_all((REPO / "ingress/gateway-api/traefik.yaml").read_text())
        if d["kind"] == "TraefikService"
    )["spec"]["failover"]
    assert "healthCheck" not in failover["service"] and "healthCheck" not in failover["fallback"]


def test_the_e2e_traefik_allows_services_without_endpoints():
    """Else the failover disappears exactly when the gateway has no ready pod (kubernetes_http.go:651)."""
    import yaml

    traefik = next(
        d for d in yaml.safe_load_all((REPO / "k8s/e2e/traefik.yaml").read_text()) if d["kind"] == "Deployment"
    )
    args = traefik["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--providers.kubernetescrd.allowEmptyServices=true" in args
    gateway = next(
        d for d in yaml.safe_load_all((REPO / "ingress/gateway-api/gateway.yaml").read_text()) if d["kind"] == "Gateway"
    )
    assert f"--entryPoints.web.address=:{gateway['spec']['listeners'][0]['port']}" in args
