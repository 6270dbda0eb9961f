#!/usr/bin/env bash
# Run the stack on minikube (CPU) behind ingress-nginx, then show failover.
#   k8s/minikube.sh up        start minikube, enable ingress, build+load images, apply, wait, curl
#   k8s/minikube.sh failover  scale the primary to 0, show answers continue (fallback: true), restore
#   k8s/minikube.sh down      delete the namespace
# Needs minikube, kubectl and docker. WEIGHTS=random (default here) builds offline.
set -euo pipefail
cd "$(dirname "$0")/.."
namespace=classifier
photo=${PHOTO:-../shared/images/chelsea.jpg}

classify() {
  local ip
  ip=$(minikube ip)
  curl -sS --fail-with-body -F "file=@${photo}" "http://${ip}/classify" \
    | python3 -c 'import json,sys; b=json.load(sys.stdin); print(b["model"], "fallback:", b["fallback"], b["fallback_reason"], "->", b["predictions"][0]["label"])'
}

up() {
  minikube status >/dev/null 2>&1 || minikube start --cpus=4 --memory=8g
  minikube addons enable ingress
  export WEIGHTS=${WEIGHTS:-random}
  COMPOSE_FILE=compose.yaml:compose.cpu.yaml docker compose build gateway primary fallback
  for image in classifier/gateway:0.1.0 classifier/primary-litert:0.1.0 classifier/fallback:0.1.0; do
    minikube image load "$image"
  done
  kubectl -n ingress-nginx wait --for=condition=Available deployment/ingress-nginx-controller --timeout=300s
  kubectl apply -k k8s/overlays/minikube
  kubectl -n "$namespace" wait --for=condition=Available deployment --all --timeout=600s
  classify
}

failover() {
  echo "primary up:";              classify
  kubectl -n "$namespace" scale deployment/primary --replicas=0
  kubectl -n "$namespace" wait --for=delete pod -l io.kompose.service=primary --timeout=120s
  echo "primary scaled to 0:";     for _ in 1 2 3; do classify; done
  kubectl -n "$namespace" scale deployment/gateway --replicas=0
  kubectl -n "$namespace" wait --for=delete pod -l io.kompose.service=gateway --timeout=120s
  echo "gateway down too (the Ingress fails over to gateway-fallback):"; classify
  kubectl -n "$namespace" scale deployment/primary deployment/gateway --replicas=1
  kubectl -n "$namespace" wait --for=condition=Available deployment --all --timeout=300s
  echo "restored:";                classify
}

case "${1:-up}" in
  up) up ;;
  failover) failover ;;
  down) kubectl delete namespace "$namespace" --ignore-not-found ;;
  *) echo "usage: $0 up|failover|down" >&2; exit 2 ;;
esac
