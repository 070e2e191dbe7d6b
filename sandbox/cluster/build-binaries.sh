#!/usr/bin/env bash
# Builds the real programs of the e2e tier from the Go module proxy, once per machine:
# etcd, kube-apiserver, kube-controller-manager, Flagger and krew, into a cache keyed by version.
#
#   sandbox/cluster/build-binaries.sh          # prints the bin directory when done
#
# CANARYGATE_E2E_CACHE overrides the cache (default: $XDG_CACHE_HOME/canary-gate-e2e, else
# ~/.cache/canary-gate-e2e). Nothing of those projects is kept in this repository: the wrapper
# modules below are written into the cache and their replace lists generated from the releases'
# own go.mod files.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}
FLAGGER_VERSION=${FLAGGER_VERSION:-v1.44.0}
KREW_VERSION=${KREW_VERSION:-v0.4.3}
GATEWAY_API_VERSION=${GATEWAY_API_VERSION:-v1.5.1}
ISTIO_API_VERSION=${ISTIO_API_VERSION:-v1.30.8}

CACHE=${CANARYGATE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/canary-gate-e2e}
KEY="k8s-$K8S_VERSION.etcd-$ETCD_VERSION.flagger-$FLAGGER_VERSION.krew-$KREW_VERSION"
BIN="$CACHE/$KEY/bin"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -trimpath" GOTOOLCHAIN=local
mkdir -p "$BIN"

log() { printf '[build-binaries %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
have() { [ -x "$BIN/$1" ]; }
moddir() { go mod download -json "$1" | python3 -c 'import json,sys;d=json.load(sys.stdin);print(d.get("Dir") or d.get("Error") or "")'; }

# A wrapper module in $1 that replaces every module the release's go.mod $2 points at a local path
# with that module's published version $3 (what `go install pkg@version` cannot do).
wrapper() {
  local dir=$1 gomod=$2 ver=$3 m
  mkdir -p "$dir"; cd "$dir"
  [ -f go.mod ] || go mod init canary-gate-e2e.invalid/wrapper >/dev/null 2>&1
  for m in $(sed -nE 's#^[[:space:]]*(replace[[:space:]]+)?([A-Za-z0-9./_-]+)[[:space:]]*=>[[:space:]]*\.\.?/.*#\2#p' "$gomod"); do
    go mod edit -replace="$m=$m@$ver"
  done
}

build_k8s() {
  have kube-apiserver && have kube-controller-manager && return
  log "kube-apiserver, kube-controller-manager $K8S_VERSION (the long one: 20-40 min cold on 2 cores)"
  local dir="$CACHE/$KEY/src/k8s" gomod staging="v0.${K8S_VERSION#v1.}" minor
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
  wrapper "$dir" "$gomod" "$staging"
  go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION"
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  local X=k8s.io/component-base/version C=k8s.io/client-go/pkg/version f ldf=""
  for f in "$X" "$C"; do
    ldf+=" -X $f.gitVersion=$K8S_VERSION -X $f.gitMajor=1 -X $f.gitMinor=$minor -X $f.gitTreeState=clean"
    ldf+=" -X $f.gitCommit=0000000000000000000000000000000000000000 -X $f.buildDate=1970-01-01T00:00:00Z"
  done
  go build -pgo=off -ldflags "-s -w $ldf" -o "$BIN/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
}

build_etcd() {
  have etcd && return
  log "etcd $ETCD_VERSION"
  local dir="$CACHE/$KEY/src/etcd" gomod
  gomod=$(go mod download -json "go.etcd.io/etcd/server/v3@$ETCD_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
  wrapper "$dir" "$gomod" "$ETCD_VERSION"
  go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go build -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3
}

build_flagger() {
  have flagger && return
  log "flagger $FLAGGER_VERSION"
  GOBIN="$BIN" go install -ldflags "-s -w" "github.com/fluxcd/flagger/cmd/flagger@$FLAGGER_VERSION"
}

build_krew() {
  have kubectl-krew && return
  log "krew $KREW_VERSION"
  local tmp; tmp=$(mktemp -d)
  GOBIN="$tmp" go install -ldflags "-s -w -X sigs.k8s.io/krew/internal/version.gitTag=$KREW_VERSION" "sigs.k8s.io/krew/cmd/krew@$KREW_VERSION"
  mv "$tmp/krew" "$BIN/kubectl-krew"; rmdir "$tmp"
}

# The YAML the cluster reads at run time (CRDs), from the module cache, recorded beside the binaries.
record_sources() {
  python3 - "$CACHE/$KEY/sources.json" <<PY
import json, sys
json.dump({
  "flagger": "$(moddir "github.com/fluxcd/flagger@$FLAGGER_VERSION")",
  "gateway-api": "$(moddir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")",
  "istio-api": "$(moddir "istio.io/api@$ISTIO_API_VERSION")",
  "versions": {"kubernetes": "$K8S_VERSION", "etcd": "$ETCD_VERSION", "flagger": "$FLAGGER_VERSION",
               "krew": "$KREW_VERSION", "gateway-api": "$GATEWAY_API_VERSION", "istio-api": "$ISTIO_API_VERSION"},
}, open(sys.argv[1], "w"), indent=2)
PY
}

start=$SECONDS
( build_etcd ); ( build_flagger ); ( build_krew ); ( build_k8s )
[ -f "$CACHE/$KEY/sources.json" ] || record_sources
log "ready in $((SECONDS - start)) s: $BIN"
echo "$BIN"
