#!/bin/sh
# Re-fetch the vendored browser files from the npm registry at their pinned versions
# and check them against tools/vendor.sha256, so the committed copies are reproducible.
# `npm pack` verifies each tarball against the registry's integrity hash.
#   tools/vendor.sh          fetch, copy into place, verify
#   tools/vendor.sh --check  verify the committed files only
set -eu

HTMX=2.0.11
AXE=4.14.1
SWAGGER=5.35.0

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATIC="$ROOT/src/mailbeacon/web/static/vendor"
TESTS="$ROOT/tests/web/vendor"

check() {
    cd "$ROOT" && sha256sum --quiet -c tools/vendor.sha256
}

if [ "${1:-}" = "--check" ]; then
    check
    exit
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm pack --silent "htmx.org@$HTMX" "axe-core@$AXE" "swagger-ui-dist@$SWAGGER" >/dev/null
for tgz in *.tgz; do
    mkdir "${tgz%.tgz}" && tar xzf "$tgz" -C "${tgz%.tgz}"
done

mkdir -p "$STATIC/swagger" "$TESTS"
cp "htmx.org-$HTMX/package/dist/htmx.min.js" "$STATIC/htmx.min.js"
cp "htmx.org-$HTMX/package/LICENSE" "$STATIC/htmx-LICENSE"
cp "axe-core-$AXE/package/axe.min.js" "$TESTS/axe.min.js"
cp "axe-core-$AXE/package/LICENSE" "$TESTS/axe-core-LICENSE"
S="swagger-ui-dist-$SWAGGER/package"
cp "$S/swagger-ui-bundle.js" "$S/swagger-ui.css" "$S/LICENSE" "$S/NOTICE" "$STATIC/swagger/"
check
echo "vendored htmx $HTMX, axe-core $AXE, swagger-ui-dist $SWAGGER"
