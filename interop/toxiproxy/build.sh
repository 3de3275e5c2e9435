#!/usr/bin/env bash
# Builds Shopify's toxiproxy server (v2.5.0, pinned in this directory's go.mod) into
# ${LNC_GOBIN:-~/.cache/lnc-rs/gobin}/toxiproxy-server for the network-fault tests
# (crates/lnc/tests/network_faults.rs, lnc_testkit::toxiproxy). Run by interop/build.sh.
# Idempotent: Go's build cache makes a rebuild take about a second.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${LNC_GOBIN:-$HOME/.cache/lnc-rs/gobin}"
mkdir -p "$out"
cd "$here"
version=$(awk '$1 == "require" && $2 == "github.com/Shopify/toxiproxy/v2" {print $3}' go.mod)
start=$(date +%s)
# -mod=readonly: go.mod/go.sum are the pins. The version string is what toxiproxy's own
# release build stamps (its Makefile), so `toxiproxy-server -version` names the pin.
go build -mod=readonly -trimpath \
  -ldflags="-s -w -X github.com/Shopify/toxiproxy/v2.Version=${version#v}" \
  -o "$out/toxiproxy-server" github.com/Shopify/toxiproxy/v2/cmd/server \
  || { echo "interop/toxiproxy/build.sh: go build failed (module download or compile error above)" >&2; exit 1; }
"$out/toxiproxy-server" -version
echo "interop/toxiproxy/build.sh: $out/toxiproxy-server ($(( $(date +%s) - start )) s)"
