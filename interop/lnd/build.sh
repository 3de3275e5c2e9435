#!/usr/bin/env bash
# Builds a real LND (lnd, lncli; v0.20.2-beta) and btcd (btcd, btcctl) from the pinned
# modules in this directory's go.mod into ${LNC_GOBIN:-~/.cache/lnc-rs/gobin}/lnd/.
# Tags: lnd's release RPC sub-servers plus `dev integration`, the tags of lnd's own
# integration tests (fast wallet scrypt, 10 ms channel-ready polling, --dev.* flags): a
# regtest network then starts in ~6 s instead of ~25 s. Cold: ~12 min on 2 cores (1.7 GB
# of Go build cache); cached: seconds.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${LNC_GOBIN:-$HOME/.cache/lnc-rs/gobin}/lnd"
mkdir -p "$out"
cd "$here"
rpc="signrpc walletrpc chainrpc invoicesrpc peersrpc routerrpc autopilotrpc watchtowerrpc neutrinorpc"
start=$(date +%s)
go build -mod=readonly -trimpath -ldflags="-s -w" -tags "dev integration $rpc" -o "$out/" \
  github.com/lightningnetwork/lnd/cmd/lnd github.com/lightningnetwork/lnd/cmd/lncli \
  github.com/btcsuite/btcd github.com/btcsuite/btcd/cmd/btcctl \
  || { echo "interop/lnd/build.sh: go build failed (module download or compile error above)" >&2; exit 1; }
echo "interop/lnd/build.sh: lnd, lncli, btcd, btcctl in $out ($(( $(date +%s) - start )) s)"
