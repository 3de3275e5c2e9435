//go:build tools

// Package tools pins Shopify's toxiproxy, the TCP fault proxy of the network-fault tests
// (issue 18): building its server from this module takes the version from go.mod, so every
// machine runs the same toxics; the module is fetched, never copied into the repository.
package tools

import (
	_ "github.com/Shopify/toxiproxy/v2/cmd/server"
)
