#!/usr/bin/env bash
# Builds the browser client reproducibly: lnc-wasm (cargo, profile wasm-release) →
# wasm-bindgen's glue (crates/lnc-wasm-bindgen: the CLI's library, pinned to the
# wasm-bindgen crate version by Cargo.lock) → wasm-opt -Oz (npm binaryen, pinned in
# web/package.json) → web/wasm/. Fails if the gzipped module is above the hard size limit.
# Used by .ci/run and `npm run build:wasm` in web/.
# Env: LNC_WASM_LIMIT (bytes gzipped, default 1500000), LNC_WASM_BUDGET (default 1000000).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=web/wasm
LIMIT="${LNC_WASM_LIMIT:-1500000}"
BUDGET="${LNC_WASM_BUDGET:-1000000}"
die() { printf 'build-wasm: %s\n' "$*" >&2; exit 1; }

# LNC_WASM_BINDGEN: an already built lnc-wasm-bindgen (.ci/run builds it with the workspace).
BINDGEN="${LNC_WASM_BINDGEN:-}"
if [ -z "$BINDGEN" ]; then
  cargo build --workspace --bin lnc-wasm-bindgen || die "building lnc-wasm-bindgen failed"
  BINDGEN="${CARGO_TARGET_DIR:-target}/debug/lnc-wasm-bindgen"
fi
VER=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if [ ! -x web/node_modules/.bin/wasm-opt ]; then
  (cd web && npm ci) || die "npm ci in web/ failed (needs the npm registry)"
fi

cargo build -p lnc-wasm --target wasm32-unknown-unknown --profile wasm-release
rm -rf "$OUT" && mkdir -p "$OUT"
"$BINDGEN" "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/wasm-release/lnc_wasm.wasm" \
  "$OUT" lnc_wasm || die "wasm-bindgen (lnc-wasm-bindgen) failed"
web/node_modules/.bin/wasm-opt -Oz \
  --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$OUT/lnc_wasm_bg.wasm" -o "$OUT/lnc_wasm_bg.opt.wasm"
mv "$OUT/lnc_wasm_bg.opt.wasm" "$OUT/lnc_wasm_bg.wasm"

raw=$(wc -c < "$OUT/lnc_wasm_bg.wasm")
gz=$(gzip -9 -c "$OUT/lnc_wasm_bg.wasm" | wc -c)
js=$(wc -c < "$OUT/lnc_wasm.js")
printf '{"wasm_raw":%d,"wasm_gzip":%d,"glue_js_raw":%d,"wasm_bindgen":"%s"}\n' "$raw" "$gz" "$js" "$VER" | tee "$OUT/size.json"
[ "$gz" -le "$LIMIT" ] || die "lnc_wasm_bg.wasm is $gz bytes gzipped, above the hard limit of $LIMIT"
[ "$gz" -le "$BUDGET" ] || echo "build-wasm: warning: $gz bytes gzipped is above the $BUDGET-byte budget" >&2
