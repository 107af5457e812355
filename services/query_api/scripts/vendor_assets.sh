#!/usr/bin/env bash
# Vendors the dashboard's chart library from the npm registry (never a CDN) into the gitignored
# finlake_query_api/static/vendor/. Idempotent; the tarball is cached under ~/.cache/finlake/npm.
set -euo pipefail
PACKAGE=lightweight-charts
VERSION=5.2.1
FILE=lightweight-charts.standalone.production.js
HERE="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="$HERE/finlake_query_api/static/vendor"
CACHE="${FINLAKE_CACHE:-$HOME/.cache/finlake}/npm"
STAMP="$TARGET/.$PACKAGE-$VERSION"

if [[ -f "$STAMP" && -f "$TARGET/$FILE" ]]; then
  exit 0
fi
command -v npm >/dev/null || { echo "vendor_assets: npm is required (apt-get install -y npm)" >&2; exit 1; }
mkdir -p "$CACHE" "$TARGET"
TARBALL="$CACHE/$PACKAGE-$VERSION.tgz"
if [[ ! -f "$TARBALL" ]]; then
  (cd "$CACHE" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
tar -xzf "$TARBALL" -C "$WORK"
cp "$WORK/package/dist/$FILE" "$TARGET/$FILE"
cp "$WORK/package/LICENSE" "$TARGET/$PACKAGE.LICENSE"
touch "$STAMP"
echo "vendored $PACKAGE@$VERSION into $TARGET"
