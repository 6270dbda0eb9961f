#!/usr/bin/env bash
# Run the stack on minikube (CPU, docker driver or any other) behind ingress-nginx, from a fresh clone.
#   k8s/minikube.sh up        start minikube (4 CPUs, 6 GiB) or check the running one is that big;
#                             enable ingress and metrics-server; build and load the images; apply
#                             k8s/overlays/minikube; wait; classify tests/data/chelsea.jpg
#   k8s/minikube.sh url       print the URL the Ingress answers on (see below)
#   k8s/minikube.sh failover  prove it: primary to 0, then the gateway to 0, nothing lost; restore
#   k8s/minikube.sh down      delete the namespace (minikube delete removes the cluster)
# Needs minikube, kubectl, docker (with Compose v2), curl and python3. WEIGHTS=random (the default
# here) builds offline with random weights; WEIGHTS=imagenet downloads the real ones.
# The URL: on Linux, http://$(minikube ip). With the docker driver on macOS or Windows the node's
# IP is not reachable from the host: run `minikube tunnel` in another terminal, and the Ingress
# answers on http://127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
export SCRIPT_NAME=minikube.sh  # the prefix of lib.sh's error lines
# shellcheck source=k8s/lib.sh disable=SC1091  # checked on its own
. k8s/lib.sh

# ingress_url OS DRIVER IP : the address the Ingress answers on from this host.
ingress_url() {
  case "$1:$2" in
    Linux:*) echo "http://$3" ;;
    *:docker | *:podman) echo "http://127.0.0.1" ;;
    *) echo "http://$3" ;;
  esac
}

driver() {
  minikube profile list -o json 2>/dev/null | python3 -c '
import json, sys
profiles = json.load(sys.stdin).get("valid") or []
print(profiles[0]["Config"]["Driver"] if profiles else "unknown")' 2>/dev/null || echo unknown
}

# size : "<cpus> <memory MiB>" minikube was started with. With the docker driver the node reports
# the host's CPUs and memory, not the container's, so the profile's own numbers come first.
size() {
  local profile
  profile=$(minikube profile list -o json 2>/dev/null | python3 -c '
import json, sys
for profile in json.load(sys.stdin).get("valid") or []:
    config = profile.get("Config") or {}
    if config.get("CPUs") and config.get("Memory"):
        print(config["CPUs"], config["Memory"])
        break' 2>/dev/null) || profile=""
  if [ -n "$profile" ]; then echo "$profile"; else node_size; fi
}

url() {
  local ip address
  ip=$(minikube ip) || die "minikube is not running: k8s/minikube.sh up"
  address=$(ingress_url "$(uname -s)" "$(driver)" "$ip")
  if [ "$address" = "http://127.0.0.1" ] && ! curl -s -o /dev/null --connect-timeout 2 --max-time 5 "$address/"; then
    die "with the $(driver) driver on $(uname -s) the Ingress is reached through a tunnel: run \`minikube tunnel\` in another terminal, then retry"
  fi
  echo "$address"
}

show() {
  read -r status model fallback reason <<<"$(classify "$1")"
  [ "$reason" != None ] || reason=""
  echo "HTTP $status: model $model, fallback $fallback${reason:+ ($reason)}"
  [ "$status" = 200 ] || die "the Ingress did not answer 200 at $1/classify"
}

up() {
  require_tools minikube kubectl docker curl python3
  require_photo
  local cluster
  if minikube status >/dev/null 2>&1; then
    cluster=$(size)
    check_size "$cluster" "minikube delete, then k8s/minikube.sh up (it starts one with --cpus=4 --memory=6g)"
  else
    minikube start --cpus=4 --memory=6g >&2 || die "minikube start failed"
    cluster=$(size)
    check_size "$cluster" "minikube start was given less than asked"
  fi
  minikube addons enable ingress >&2 || die "cannot enable the ingress addon"
  minikube addons enable metrics-server >&2 || die "cannot enable metrics-server (the HPAs need it)"
  build_images
  local image
  for image in "${IMAGES[@]}"; do
    minikube image load "$image" >&2 || die "minikube image load $image failed"
  done
  kubectl -n ingress-nginx wait --for=condition=Available deployment/ingress-nginx-controller --timeout=300s >&2 \
    || die "ingress-nginx did not become Available"
  kubectl apply -k k8s/overlays/minikube >&2 || die "kubectl apply -k k8s/overlays/minikube failed"
  wait_available 600s
  local address
  address=$(url)
  show "$address"
}

failover() {
  require_tools minikube kubectl curl python3
  require_photo
  local work address
  address=$(url)
  work=$(mktemp -d)
  prove_failover "$address" "$work"
  rm -rf "$work"
  echo "failover proven: no request lost"
}

case "${1:-up}" in
  up) up ;;
  url) require_tools minikube curl python3; url ;;
  failover) failover ;;
  down) require_tools kubectl; kubectl delete namespace "$NAMESPACE" --ignore-not-found ;;
  *) echo "usage: $0 up|url|failover|down" >&2; exit 2 ;;
esac
