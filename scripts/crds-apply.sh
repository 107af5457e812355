#!/usr/bin/env bash
# Install or upgrade finlake's CRDs. Helm installs a chart's crds/ once and never upgrades them, so every install
# and upgrade applies them first, server-side (the field manager owns them; conflicts with an older `helm install`
# are taken over). Usage: scripts/crds-apply.sh [kubectl args, e.g. --context prod]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shopt -s nullglob
crds=("$here"/manifests/crds/*.yaml)
((${#crds[@]})) || { echo "error: no CRDs in manifests/crds" >&2; exit 1; }
for crd in "${crds[@]}"; do
  kubectl "$@" apply --server-side --force-conflicts --field-manager=finlake-crds -f "$crd"
done
for crd in "${crds[@]}"; do
  name=$(kubectl "$@" apply --server-side --dry-run=server --field-manager=finlake-crds -f "$crd" -o name)
  kubectl "$@" wait --for=condition=Established --timeout=60s "$name"
done
