//go:build tools

// Package tools pins the real LND and btcd programs the regtest tests run (issue 16):
// building them from this module (go build of the four main packages) takes their
// versions from go.mod, with lnd's own replace directives repeated there (Go ignores a
// dependency's replaces; lnrpc does not compile without the protobuf one).
package tools

import (
	_ "github.com/btcsuite/btcd"
	_ "github.com/btcsuite/btcd/cmd/btcctl"
	_ "github.com/lightningnetwork/lnd/cmd/lncli"
	_ "github.com/lightningnetwork/lnd/cmd/lnd"
)
