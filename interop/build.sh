#!/usr/bin/env bash
# Builds the Go interop programs (go-relay, go-lnc-node, go-lnc-app, go-gbn-peer, go-vectors, and lnc-web's
# Go half go-wasm-client.wasm) from the pinned
# modules in interop/go.mod into ${LNC_GOBIN:-~/.cache/lnc-rs/gobin}, and toxiproxy-server
# (the network-fault tests' TCP proxy) from its own pinned module, interop/toxiproxy/.
# Idempotent: Go's build cache makes a rebuild of unchanged sources take seconds.
# Needs Go >= 1.21 and the Go module proxy (or a filled module cache).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${LNC_GOBIN:-$HOME/.cache/lnc-rs/gobin}"
if ! command -v go >/dev/null 2>&1; then
  echo "interop/build.sh: 'go' not found on PATH; install Go >= 1.21" >&2
  exit 1
fi
mkdir -p "$out"
start=$(date +%s%N)
cd "$here"
# -mod=readonly: go.mod/go.sum are the pins; never rewrite them during a build.
if ! go build -mod=readonly -trimpath -o "$out/" ./cmd/...; then
  echo "interop/build.sh: go build failed (module download or compile error above)" >&2
  exit 1
fi
# lnc-web's Go half (cmd/go-wasm-client, //go:build js) for the browser tests, with the
# wasm_exec.js of the Go that built it (Go >= 1.24 keeps it in lib/wasm, older in misc/wasm).
if ! GOOS=js GOARCH=wasm go build -mod=readonly -trimpath -ldflags="-s -w -buildid=" \
    -o "$out/go-wasm-client.wasm" ./cmd/go-wasm-client; then
  echo "interop/build.sh: building the wasm client (GOOS=js GOARCH=wasm) failed" >&2
  exit 1
fi
goroot=$(go env GOROOT)
cp "$(ls "$goroot/lib/wasm/wasm_exec.js" "$goroot/misc/wasm/wasm_exec.js" 2>/dev/null | head -1)" "$out/wasm_exec.js"
# A module of its own: toxiproxy's dependencies (an older prometheus, zerolog) stay out of
# the LNC stack's version selection.
bash "$here/toxiproxy/build.sh" || exit 1
end=$(date +%s%N)
for p in go-relay go-lnc-node go-lnc-app go-gbn-peer go-vectors go-wasm-client.wasm wasm_exec.js toxiproxy-server; do
  if [ ! -s "$out/$p" ]; then
    echo "interop/build.sh: $out/$p missing after the build" >&2
    exit 1
  fi
  echo "built $out/$p"
done
ms=$(( (end - start) / 1000000 ))
echo "interop/build.sh: $(go version | awk '{print $3}') built in $((ms / 1000)).$(( (ms % 1000) / 100 )) s"
