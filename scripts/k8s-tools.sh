#!/usr/bin/env bash
# Kubernetes test tools from the Go module proxy, cached under ~/.cache/finlake/tools/<versions>/:
#   etcd, kube-apiserver and kubectl (built from wrapper modules), and the kubeflow spark-operator's
#   SparkApplication / ScheduledSparkApplication CRDs (read from the Go module cache, never committed).
# Idempotent; logs go to stderr, the bin dir is the only line on stdout. The CRDs are in <bin>/../crds.
# Needs Go (>= the version that kubernetes' go.mod asks for). Cold build: minutes; warm: instant.
# No prebuilt source was found in the registries this project may use (PyPI, npm, crates.io, Maven Central,
# Debian: bookworm ships etcd-server 3.4.23, below the etcd 3.5+ that current Kubernetes supports, and no
# kube-apiserver; its kubectl is 1.20), so the binaries are built from the Go module proxy.
set -euo pipefail

K8S_VERSION=${FINLAKE_K8S_VERSION:-1.37.2}
ETCD_VERSION=${FINLAKE_ETCD_VERSION:-3.6.16}
SPARK_OPERATOR_VERSION=${FINLAKE_SPARK_OPERATOR_VERSION:-2.5.2}
ROOT=${FINLAKE_TOOLS_CACHE:-$HOME/.cache/finlake/tools}
DIR="$ROOT/k8s-v$K8S_VERSION-etcd-v$ETCD_VERSION-sparkop-v$SPARK_OPERATOR_VERSION"
BIN="$DIR/bin"
CRDS="$DIR/crds"

log() { echo "k8s-tools: $*" >&2; }

# go.dev's layout when go is not on PATH (a non-login shell that no profile extended).
command -v go >/dev/null || [[ ! -x /usr/local/go/bin/go ]] || PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { log "error: Go is required (https://go.dev/dl/)"; exit 1; }
mkdir -p "$BIN" "$CRDS" "$DIR/src"
# One builder at a time: `make test` and the e2e fixture may both call this script.
exec 9>"$DIR/.lock"
flock 9

export GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOTOOLCHAIN=${GOTOOLCHAIN:-local}

build_etcd() {
  [[ -x "$BIN/etcd" ]] && "$BIN/etcd" --version >/dev/null 2>&1 && return
  log "building etcd v$ETCD_VERSION (a few minutes cold)"
  local src="$DIR/src/etcd"
  mkdir -p "$src" && cd "$src"
  [[ -f go.mod ]] || go mod init local/etcd >&2
  # server/v3's go.mod has replace directives, so `go install` refuses it; a wrapper module builds it.
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >&2
  nice -n 10 go build -p "$(nproc)" -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" \
    go.etcd.io/etcd/server/v3 >&2
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

build_kubernetes() {
  [[ -x "$BIN/kube-apiserver" && -x "$BIN/kubectl" ]] \
    && "$BIN/kube-apiserver" --version >/dev/null 2>&1 && return
  log "building kube-apiserver and kubectl v$K8S_VERSION (10-20 minutes cold on 2 cores)"
  local src="$DIR/src/kubernetes" minor=${K8S_VERSION#1.}
  minor=${minor%%.*}
  mkdir -p "$src" && cd "$src"
  [[ -f go.mod ]] || go mod init local/kubernetes >&2
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging/...;
  # as a dependency those replaces are ignored, so point each one at its published v0.<minor>.<patch>.
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  local module
  for module in $(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$gomod"); do
    go mod edit -replace="$module=$module@v0.${K8S_VERSION#1.}"
  done
  go get "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kubectl@v$K8S_VERSION" >&2
  # Without these the binaries report v0.0.0-master, which breaks version checks (Helm kubeVersion).
  local ldflags="-s -w"
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean"
  done
  # One `go build` for both: the packages they share compile once, on every core (-p), and the two
  # links run in parallel. Only these two commands are built (no kubelet, controller-manager, ...).
  local out="$DIR/build-out"
  rm -rf "$out" && mkdir -p "$out"
  nice -n 10 go build -p "$(nproc)" -trimpath -ldflags "$ldflags" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl >&2
  mv "$out/kube-apiserver" "$BIN/kube-apiserver"
  mv "$out/kubectl" "$BIN/kubectl"
  rmdir "$out"
}

fetch_spark_operator_crds() {
  local name
  [[ -s "$CRDS/sparkoperator.k8s.io_sparkapplications.yaml" \
    && -s "$CRDS/sparkoperator.k8s.io_scheduledsparkapplications.yaml" ]] && return
  log "fetching the spark-operator v$SPARK_OPERATOR_VERSION CRDs from the Go module proxy"
  local module_dir
  module_dir=$(cd /tmp && go mod download -json "github.com/kubeflow/spark-operator/v2@v$SPARK_OPERATOR_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  for name in sparkapplications scheduledsparkapplications; do
    cp "$module_dir/charts/spark-operator-chart/crds/sparkoperator.k8s.io_$name.yaml" "$CRDS/"
    chmod u+w "$CRDS/sparkoperator.k8s.io_$name.yaml"
  done
}

fetch_spark_operator_crds
# etcd builds while the Kubernetes modules download (network and CPU overlap); both must succeed.
build_etcd &
etcd_job=$!
build_kubernetes
wait "$etcd_job"
log "ready: $("$BIN/kube-apiserver" --version), etcd $("$BIN/etcd" --version | head -1)"
echo "$BIN"
