# Shared by k8s/minikube.sh and k8s/e2e.sh (sourced, not run): tool checks, the image build,
# sizing, bounded requests and the failover proof. Every failure is one line on stderr.
# shellcheck shell=bash

NAMESPACE=classifier
# shellcheck disable=SC2034  # used by the scripts that source this file
IMAGES=(classifier/gateway:0.1.0 classifier/primary-litert:0.1.0 classifier/fallback:0.1.0)
PHOTO=${PHOTO:-tests/data/chelsea.jpg}
# What the minikube overlay requests (1.4 CPU, 2 GiB) plus the control plane, ingress-nginx and
# metrics-server (~0.95 CPU, ~1 GiB), with room for rolling updates and the kernel.
NEED_CPUS=4
NEED_MEMORY_MIB=5800

die() {
  echo "${SCRIPT_NAME:-k8s}: $*" >&2
  exit 1
}

# require_tools TOOL... : one line naming every missing tool.
require_tools() {
  local missing=() tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  [ "${#missing[@]}" -eq 0 ] || die "missing tool(s) on PATH: ${missing[*]} (this script needs: $*)"
}

require_photo() {
  [ -r "$PHOTO" ] || die "photo $PHOTO is not readable (set PHOTO=/path/to/image.jpg)"
}

build_images() {
  WEIGHTS=${WEIGHTS:-random} docker compose build gateway primary fallback >&2 \
    || die "docker compose build failed"
}

# fits HAVE_CPUS HAVE_MEMORY_MIB : whether a node of that size can run the stack.
fits() {
  [ "$1" -ge "$NEED_CPUS" ] && [ "$2" -ge "$NEED_MEMORY_MIB" ]
}

# node_size : "<cpus> <memory MiB>" of the first node, from its capacity.
node_size() {
  local cpus memory
  cpus=$(kubectl get nodes -o 'jsonpath={.items[0].status.capacity.cpu}') || die "kubectl cannot reach the cluster"
  memory=$(kubectl get nodes -o 'jsonpath={.items[0].status.capacity.memory}') || die "kubectl cannot reach the cluster"
  case "$memory" in
    *Ki) memory=$(( ${memory%Ki} / 1024 )) ;;
    *Mi) memory=${memory%Mi} ;;
    *Gi) memory=$(( ${memory%Gi} * 1024 )) ;;
    *) memory=$(( memory / 1048576 )) ;;
  esac
  echo "${cpus%m} $memory"
}

# check_size "<cpus> <memory MiB>" HINT : refuse a cluster too small, saying what to do.
check_size() {
  # shellcheck disable=SC2086  # two numbers
  fits $1 || die "the cluster has ${1% *} CPUs and ${1#* } MiB; the stack needs ${NEED_CPUS} CPUs and ${NEED_MEMORY_MIB} MiB: $2"
  echo "cluster size: ${1% *} CPUs, ${1#* } MiB (needs ${NEED_CPUS} CPUs, ${NEED_MEMORY_MIB} MiB)" >&2
}

wait_available() {
  kubectl -n "$NAMESPACE" wait --for=condition=Available deployment --all --timeout="${1:-600s}" >&2 \
    || die "deployments in namespace $NAMESPACE did not become Available"
}

# classify URL : one bounded request; prints "<status> <model> <fallback> <reason>".
classify() {
  local body status
  body=$(mktemp)
  status=$(curl -sS --connect-timeout 5 --max-time 15 -o "$body" -w '%{http_code}' -F "file=@${PHOTO}" "$1/classify" 2>/dev/null) || status=000
  python3 - "$body" "$status" <<'EOF'
import json, sys
path, status = sys.argv[1], sys.argv[2]
try:
    body = json.load(open(path))
    print(status, body.get("model"), str(body.get("fallback")).lower(), body.get("fallback_reason"))
except (OSError, ValueError):
    print(status, "-", "-", "-")
EOF
  rm -f "$body"
}

# request_loop URL COUNT OUTFILE : COUNT requests, one after the other, each bounded by classify.
request_loop() {
  local i
  : >"$3"
  for ((i = 0; i < $2; i++)); do
    classify "$1" >>"$3"
    sleep 0.2
  done
}

# judge OUTFILE EXPECT WHAT : no request lost (all 200) and the answers are as expected
# (primary: at least one answer from the primary; fallback: every answer labelled fallback).
judge() {
  local total lost primary fallback
  total=$(wc -l <"$1")
  lost=$(awk '$1 != "200"' "$1" | wc -l)
  primary=$(awk '$1 == "200" && $3 == "false"' "$1" | wc -l)
  fallback=$(awk '$1 == "200" && $3 == "true"' "$1" | wc -l)
  echo "$3: $total requests, $lost lost, $primary from the primary, $fallback labelled fallback" >&2
  if [ "$total" -eq 0 ] || [ "$lost" -ne 0 ]; then
    die "$3: $lost of $total requests failed (statuses: $(awk '$1 != "200" {print $1}' "$1" | sort | uniq -c | tr -s ' \n' ' '))"
  fi
  case "$2" in
    primary) [ "$primary" -gt 0 ] || die "$3: no answer came from the primary" ;;
    fallback) [ "$fallback" -eq "$total" ] || die "$3: $primary answers were not labelled fallback" ;;
  esac
}

# scale_during URL DEPLOYMENT REPLICAS COUNT OUTFILE : scale while a request loop runs, then wait
# until the deployment has no pod left (0) or is Available again.
scale_during() {
  request_loop "$1" "$4" "$5" &
  local loop=$!
  sleep 1
  kubectl -n "$NAMESPACE" scale "deployment/$2" --replicas="$3" >&2 || die "cannot scale $2"
  if [ "$3" -eq 0 ]; then
    kubectl -n "$NAMESPACE" wait --for=delete pod -l "io.kompose.service=$2" --timeout=120s >&2 \
      || die "$2's pods did not go away"
  else
    kubectl -n "$NAMESPACE" rollout status "deployment/$2" --timeout=300s >&2 || die "$2 did not come back"
  fi
  wait "$loop"
}

# prove_failover URL WORKDIR : primary answers; primary down -> fallback; gateway down too ->
# the fallback-only gateway through the edge; then restored. Nothing lost at any step.
prove_failover() {
  local url=$1 out=$2
  request_loop "$url" 10 "$out/healthy"
  judge "$out/healthy" primary "primary up"
  scale_during "$url" primary 0 20 "$out/primary-down"
  judge "$out/primary-down" any "scaling the primary to 0"
  request_loop "$url" 10 "$out/primary-gone"
  judge "$out/primary-gone" fallback "primary at 0"
  scale_during "$url" gateway 0 20 "$out/gateway-down"
  judge "$out/gateway-down" fallback "scaling the gateway to 0"
  request_loop "$url" 10 "$out/gateway-gone"
  judge "$out/gateway-gone" fallback "gateway at 0 (the edge's fallback-only gateway)"
  kubectl -n "$NAMESPACE" scale deployment/primary --replicas=1 >&2 || die "cannot restore the primary"
  kubectl -n "$NAMESPACE" scale deployment/gateway --replicas=2 >&2 || die "cannot restore the gateway"
  wait_available 300s
  request_loop "$url" 10 "$out/restored"
  judge "$out/restored" any "restored"
}
