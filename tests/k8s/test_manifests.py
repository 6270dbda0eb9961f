"""Every manifest and kustomize build validates offline, and every container is hardened."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

KUBECTL = str(Path(sys.executable).parent / "kubectl")
VALIDATE = str(Path(sys.executable).parent / "kubernetes-validate")
OVERLAYS = ["cpu", "gpu", "minikube"]
KUBERNETES_VERSIONS = [f"1.{minor}.0" for minor in range(29, 38)]
PUBLISHED = {"cpu": ["gateway", "fallback", "primary-litert"], "gpu": ["gateway", "fallback", "primary-tfserving"]}


def kustomize(overlay: str) -> list[dict]:
    result = subprocess.run(
        [KUBECTL, "kustomize", str(REPO / "k8s" / "overlays" / overlay)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request, tmp_path_factory):
    documents = kustomize(request.param)
    path = tmp_path_factory.mktemp("k8s") / f"{request.param}.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return request.param, documents, path


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kustomize_output_validates_strictly(rendered, version):
    _, _, path = rendered
    result = subprocess.run(
        [VALIDATE, "--strict", "--quiet", "-k", version, str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_source_manifest_validates():
    files = [
        p for p in (REPO / "k8s").rglob("*.yaml") if p.name != "kustomization.yaml" and "components" not in p.parts
    ]
    files += [p for p in (REPO / "k8s" / "components").rglob("*.yaml") if p.name != "kustomization.yaml"]
    files.append(REPO / "ingress" / "ingress.yaml")
    result = subprocess.run(
        [VALIDATE, "--strict", "--quiet", "-k", "1.33.0", *map(str, files)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _containers(documents):
    for document in documents:
        if document["kind"] == "Deployment":
            for container in document["spec"]["template"]["spec"]["containers"]:
                yield document, container


def test_expected_objects(rendered):
    overlay, documents, _ = rendered
    names = {(d["kind"], d["metadata"]["name"]) for d in documents}
    for name in ("gateway", "gateway-fallback", "primary", "fallback"):
        assert ("Deployment", name) in names and ("Service", name) in names
    for name in ("gateway", "gateway-fallback", "fallback"):
        assert ("HorizontalPodAutoscaler", name) in names and ("PodDisruptionBudget", name) in names
    assert ("Ingress", "classifier") in names
    assert {n for k, n in names if k == "NetworkPolicy"} == {"model-servers-from-gateways", "gateways-from-ingress"}
    assert all(d["metadata"].get("namespace") == "classifier" for d in documents if d["kind"] != "Namespace")


def test_every_container_is_hardened_probed_and_limited(rendered):
    _, documents, _ = rendered
    for deployment, container in _containers(documents):
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"] and context["seccompProfile"]["type"] == "RuntimeDefault"
        assert container["readinessProbe"] and container["livenessProbe"], name
        assert container["resources"]["requests"] and container["resources"]["limits"], name
        assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"], name
        assert pod["terminationGracePeriodSeconds"] >= 20, name
        image = container["image"]
        assert ":" in image and not image.endswith(":latest"), image


def test_probes_check_what_each_server_means_by_ready(rendered):
    _, documents, _ = rendered
    containers = {d["metadata"]["name"]: c for d, c in _containers(documents)}
    for gateway in ("gateway", "gateway-fallback"):
        assert containers[gateway]["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert containers[gateway]["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for server, model in (("primary", "wide_resnet50_2"), ("fallback", "mobilenet_v3_large")):
        command = containers[server]["readinessProbe"]["exec"]["command"]
        assert command[:2] == ["bash", "-c"] and f"/v1/models/{model}" in command[2] and "AVAILABLE" in command[2]
    assert (
        containers["primary"]["startupProbe"]["failureThreshold"]
        * containers["primary"]["startupProbe"]["periodSeconds"]
        >= 300
    ), "TF-Serving may take minutes to load on a GPU"


def test_gpu_only_in_the_gpu_overlay():
    for overlay, wanted in (("gpu", 1), ("cpu", None), ("minikube", None)):
        primary = next(c for d, c in _containers(kustomize(overlay)) if d["metadata"]["name"] == "primary")
        assert primary["resources"]["limits"].get("nvidia.com/gpu") == wanted, overlay
        assert ("tfserving" in primary["image"]) == (overlay == "gpu"), primary["image"]
        assert ("env" in primary) == (overlay != "gpu"), "INTERPRETERS/INTERPRETER_THREADS are the LiteRT server's"


WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"


def _published_by_the_workflow(name: str) -> bool:
    text = WORKFLOW.read_text()
    return "classifier-${{ matrix.name }}" in text and re.search(rf"\bname: {re.escape(name)}\b", text) is not None


def _release_tag_pattern() -> str:
    """The tag a release v1.2.3 gets: docker/metadata-action's semver {{version}} drops the "v";
    the bare git ref keeps it."""
    text = WORKFLOW.read_text()
    if "type=semver,pattern={{version}}" in text:
        return r"\d+\.\d+\.\d+"
    assert "github.ref_name" in text, "how does the publish job tag images?"
    return r"v\d+\.\d+\.\d+"


@pytest.mark.parametrize("overlay", sorted(PUBLISHED))
def test_published_overlays_use_the_images_the_workflow_publishes(overlay):
    """ghcr.io/<owner>/classifier-<name>:<release tag>, lower case, names the publish job builds."""
    images = {c["image"] for _, c in _containers(kustomize(overlay))}
    names = set()
    for image in images:
        match = re.fullmatch(rf"ghcr\.io/([a-z0-9-]+)/classifier-([a-z-]+):({_release_tag_pattern()})", image)
        assert match, f"{image}: not a name and tag the release workflow publishes"
        names.add(match.group(2))
    assert names == set(PUBLISHED[overlay])
    assert all(map(_published_by_the_workflow, names)), "every image must be one the publish job pushes"


def test_minikube_overlay_runs_local_images_only():
    for _, container in _containers(kustomize("minikube")):
        assert container["image"].startswith("classifier/") and container["imagePullPolicy"] == "Never"


def test_no_apply_scales_a_deployment_under_its_autoscaler(rendered):
    _, documents, _ = rendered
    scaled = {d["spec"]["scaleTargetRef"]["name"] for d in documents if d["kind"] == "HorizontalPodAutoscaler"}
    for document in documents:
        if document["kind"] == "Deployment" and document["metadata"]["name"] in scaled:
            assert "replicas" not in document["spec"], f"{document['metadata']['name']}: the HPA owns replicas"


def test_the_ingress_is_the_only_entry(rendered):
    _, documents, _ = rendered
    for document in documents:
        if document["kind"] == "Service":
            assert document["spec"].get("type", "ClusterIP") == "ClusterIP", document["metadata"]["name"]


def test_fallback_gateway_is_fallback_only(rendered):
    _, documents, _ = rendered
    container = next(c for d, c in _containers(documents) if d["metadata"]["name"] == "gateway-fallback")
    env = {e["name"]: e["value"] for e in container["env"]}
    assert "PRIMARY_URL" not in env and env["FALLBACK_URL"] == "grpc://fallback:8500"


def test_ingress_default_backend_is_a_bare_service_in_the_namespace(rendered):
    _, documents, _ = rendered
    ingress = next(d for d in documents if d["kind"] == "Ingress")
    notes = ingress["metadata"]["annotations"]
    backend = notes["nginx.ingress.kubernetes.io/default-backend"]
    assert backend == "gateway-fallback" and ":" not in backend
    assert any(d["kind"] == "Service" and d["metadata"]["name"] == backend for d in documents)
    assert notes["nginx.ingress.kubernetes.io/custom-http-errors"] == "500,502,503,504"
    assert notes["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "on"
    limit_mb = int(notes["nginx.ingress.kubernetes.io/proxy-body-size"].rstrip("m"))
    assert limit_mb * (1 << 20) > 10 << 20, "at least the gateway's MAX_BODY_BYTES plus multipart overhead"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > 2, "longer than the gateway's deadline"


def test_network_policies_let_only_gateways_reach_model_servers(rendered):
    _, documents, _ = rendered
    policy = next(d for d in documents if d["metadata"]["name"] == "model-servers-from-gateways")
    selected = policy["spec"]["podSelector"]["matchExpressions"][0]["values"]
    allowed = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]["values"]
    assert sorted(selected) == ["fallback", "primary"] and sorted(allowed) == ["gateway", "gateway-fallback"]


def test_the_gpu_overlay_is_what_compose_gpu_yaml_runs():
    """The same TF-Serving image and GPU sizing as compose's GPU switch (kompose drops the GPU)."""
    gpu_compose = yaml.safe_load((REPO / "compose.gpu.yaml").read_text().replace("!reset", "").replace("!override", ""))
    service = gpu_compose["services"]["primary"]
    primary = next(c for d, c in _containers(kustomize("gpu")) if d["metadata"]["name"] == "primary")
    repository = service["image"].split(":")[0].split("/")[-1]
    assert primary["image"].split(":")[0].endswith(f"/classifier-{repository}")
    limits = service["deploy"]["resources"]["limits"]
    assert float(primary["resources"]["limits"]["cpu"]) == float(limits["cpus"])
    assert primary["resources"]["limits"]["memory"] == limits["memory"].replace("G", "Gi")
    assert (
        service["deploy"]["resources"]["reservations"]["devices"][0]["count"]
        == 1
        == primary["resources"]["limits"]["nvidia.com/gpu"]
    )
