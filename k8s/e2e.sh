#!/usr/bin/env bash
# Live cluster test: kind + ingress-nginx, then the Gateway API alternative on Traefik, same cluster.
#   bash k8s/e2e.sh            (from the repository root; KEEP_CLUSTER=1 keeps the cluster)
# Needs kind, kubectl, docker (with Compose v2), curl and python3 on PATH. It:
#   1. creates the kind cluster "classifier-e2e" from k8s/e2e/kind.yaml (node image: kind's default);
#   2. builds classifier/{gateway,primary-litert,fallback}:0.1.0 with WEIGHTS=random and loads them;
#   3. installs ingress-nginx controller-v1.15.1, applies k8s/overlays/minikube (the Ingress too)
#      and proves the failover through it on http://127.0.0.1:18080: answers from the primary;
#      primary scaled to 0 -> answers continue, labelled fallback; gateway scaled to 0 -> answers
#      continue through the fallback-only gateway; nothing lost in the bounded request loops;
#   4. installs the Gateway API CRDs v1.5.1 and Traefik v3.7.9 (k8s/e2e/traefik.yaml), applies
#      ingress/gateway-api/ and proves the same on http://127.0.0.1:18000;
#   5. deletes the cluster (unless KEEP_CLUSTER=1). Any failure: one line "e2e: FAILED: ..." and
#      a non-zero exit.
# Downloads (besides the images these manifests name, which the cluster pulls):
#   https://raw.githubusercontent.com/kubernetes/ingress-nginx/controller-v1.15.1/deploy/static/provider/kind/deploy.yaml
#   https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.5.1/standard-install.yaml
#   https://raw.githubusercontent.com/traefik/traefik/v3.7.9/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml
#   https://raw.githubusercontent.com/traefik/traefik/v3.7.9/docs/content/reference/dynamic-configuration/kubernetes-crd-rbac.yml
#   https://raw.githubusercontent.com/traefik/traefik/v3.7.9/docs/content/reference/dynamic-configuration/kubernetes-gateway-rbac.yml
set -euo pipefail
cd "$(dirname "$0")/.."
export SCRIPT_NAME="e2e: FAILED"  # the prefix of lib.sh's error lines
# shellcheck source=k8s/lib.sh disable=SC1091  # checked on its own
. k8s/lib.sh

CLUSTER=${CLUSTER:-classifier-e2e}
INGRESS_NGINX=https://raw.githubusercontent.com/kubernetes/ingress-nginx/controller-v1.15.1/deploy/static/provider/kind/deploy.yaml
GATEWAY_API=https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.5.1/standard-install.yaml
TRAEFIK=https://raw.githubusercontent.com/traefik/traefik/v3.7.9/docs/content/reference/dynamic-configuration
NGINX_URL=http://127.0.0.1:18080
TRAEFIK_URL=http://127.0.0.1:18000

step() { echo "e2e: $*" >&2; }

cleanup() {
  if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
    step "keeping cluster $CLUSTER (kind delete cluster --name $CLUSTER removes it)"
  else
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
}

# retry COMMAND... : up to 6 tries 10 s apart (admission webhooks and CRDs take a moment to serve).
retry() {
  local _
  for _ in 1 2 3 4 5 6; do
    "$@" >&2 && return 0
    sleep 10
  done
  return 1
}

# wait_for_url URL WHAT : bounded wait until the edge answers 200 on /classify.
wait_for_url() {
  local _
  for _ in $(seq 1 60); do
    [ "$(classify "$1" | cut -d' ' -f1)" = 200 ] && return 0
    sleep 5
  done
  die "$2 did not answer 200 at $1/classify within 5 minutes"
}

main() {
  require_tools kind kubectl docker curl python3
  require_photo
  kind get clusters 2>/dev/null | grep -qx "$CLUSTER" && die "a kind cluster named $CLUSTER exists; delete it or set CLUSTER"
  trap cleanup EXIT
  step "creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --config k8s/e2e/kind.yaml --wait 120s >&2 || die "kind create cluster failed"
  build_images
  local image
  for image in "${IMAGES[@]}"; do
    kind load docker-image --name "$CLUSTER" "$image" >&2 || die "kind load docker-image $image failed"
  done

  step "ingress-nginx controller-v1.15.1"
  kubectl apply -f "$INGRESS_NGINX" >&2 || die "cannot install ingress-nginx"
  kubectl -n ingress-nginx wait --for=condition=ready pod -l app.kubernetes.io/component=controller --timeout=300s >&2 \
    || die "ingress-nginx did not become ready"
  retry kubectl apply -k k8s/overlays/minikube || die "kubectl apply -k k8s/overlays/minikube failed"
  wait_available 900s
  wait_for_url "$NGINX_URL" "ingress-nginx"
  local work
  work=$(mktemp -d)
  step "failover through ingress-nginx"
  prove_failover "$NGINX_URL" "$work"

  step "Gateway API v1.5.1 and Traefik v3.7.9"
  kubectl apply --server-side -f "$GATEWAY_API" >&2 || die "cannot install the Gateway API CRDs"
  kubectl apply --server-side -f "$TRAEFIK/kubernetes-crd-definition-v1.yml" >&2 || die "cannot install Traefik's CRDs"
  kubectl apply -f "$TRAEFIK/kubernetes-crd-rbac.yml" -f "$TRAEFIK/kubernetes-gateway-rbac.yml" >&2 \
    || die "cannot install Traefik's RBAC"
  kubectl apply -f k8s/e2e/traefik.yaml >&2 || die "cannot install Traefik"
  kubectl create clusterrolebinding classifier-traefik-crd --clusterrole=traefik-ingress-controller \
    --serviceaccount=traefik:traefik >&2 || die "cannot bind Traefik's CRD role"
  kubectl create clusterrolebinding classifier-traefik-gateway --clusterrole=gateway-role \
    --serviceaccount=traefik:traefik >&2 || die "cannot bind Traefik's Gateway API role"
  kubectl -n traefik rollout status deployment/traefik --timeout=300s >&2 || die "Traefik did not become ready"
  retry kubectl apply -n "$NAMESPACE" -f ingress/gateway-api/ || die "cannot apply ingress/gateway-api/"
  wait_for_url "$TRAEFIK_URL" "Traefik's Gateway"
  step "failover through the Gateway API (Traefik)"
  prove_failover "$TRAEFIK_URL" "$work"
  rm -rf "$work"
  step "passed: failover proven through ingress-nginx and through the Gateway API, nothing lost"
}

main "$@"
