//go:build js

// go-wasm-client is the Go half of lnc-web for our browser tests: a wasm program
// with the JS contract of lightning-node-connect's cmd/wasm-client (the program
// behind @lightninglabs/lnc-web's lnc-*.wasm), built on lightning-node-connect's
// own mailbox package (WebSocket transport, GBN, Noise, scrypt) and lnd's lnrpc
// JSON callbacks. Upstream's cmd/wasm-client is a nested Go module that the Go
// module proxy does not serve, so this is our program on the same packages; the
// protocol code lnc-web users run is the same.
//
// Built by interop/build.sh: GOOS=js GOARCH=wasm → $LNC_GOBIN/go-wasm-client.wasm
// (with Go's wasm_exec.js beside it).
//
// Contract (as lnc-web 0.3.6-alpha's WasmManager drives it):
//
//	argv: --debuglevel=... --namespace=NS --onlocalprivcreate=NS.onLocalPrivCreate
//	      --onremotekeyreceive=NS.onRemoteKeyReceive --onauthdata=NS.onAuthData
//	globalThis[NS].wasmClientIsReady() bool
//	globalThis[NS].wasmClientConnectServer(host, isDevServer, phrase, localPrivHex, remotePubHex)
//	globalThis[NS].wasmClientIsConnected() bool
//	globalThis[NS].wasmClientDisconnect()
//	globalThis[NS].wasmClientInvokeRPC("pkg.Service.Method", reqJSON, cb(respJSONorErrorText))
//	globalThis[NS].wasmClientStatus() string
//	globalThis[NS].wasmClientGetExpiry() / wasmClientIsReadOnly() / wasmClientHasPerms(m) / wasmClientIsCustom()
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall/js"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btclog"
	"github.com/lightninglabs/lightning-node-connect/gbn"
	"github.com/lightninglabs/lightning-node-connect/mailbox"
	"github.com/lightningnetwork/lnd/keychain"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/chainrpc"
	"github.com/lightningnetwork/lnd/lnrpc/invoicesrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/lnrpc/signrpc"
	"github.com/lightningnetwork/lnd/lnrpc/verrpc"
	"github.com/lightningnetwork/lnd/lnrpc/walletrpc"
	"google.golang.org/grpc"
	"gopkg.in/macaroon.v2"
)

type rpcFunc = func(context.Context, *grpc.ClientConn, string, func(string, error))

var registrations = []func(map[string]rpcFunc){
	lnrpc.RegisterLightningJSONCallbacks,
	lnrpc.RegisterStateJSONCallbacks,
	chainrpc.RegisterChainNotifierJSONCallbacks,
	invoicesrpc.RegisterInvoicesJSONCallbacks,
	routerrpc.RegisterRouterJSONCallbacks,
	signrpc.RegisterSignerJSONCallbacks,
	verrpc.RegisterVersionerJSONCallbacks,
	walletrpc.RegisterWalletKitJSONCallbacks,
}

type client struct {
	ns, onLocalPriv, onRemoteKey, onAuthData string

	mu      sync.Mutex
	conn    *grpc.ClientConn
	status  func() mailbox.ClientStatus
	mac     *macaroon.Macaroon
	methods map[string]rpcFunc
}

func main() {
	fs := flag.NewFlagSet("wasm-client", flag.ContinueOnError)
	level := fs.String("debuglevel", "info", "log level (first comma-separated item)")
	c := &client{methods: map[string]rpcFunc{}}
	fs.StringVar(&c.ns, "namespace", "default", "JS namespace object")
	fs.StringVar(&c.onLocalPriv, "onlocalprivcreate", "", "JS callback for a new local key")
	fs.StringVar(&c.onRemoteKey, "onremotekeyreceive", "", "JS callback for the remote key")
	fs.StringVar(&c.onAuthData, "onauthdata", "", "JS callback for auth data")
	if err := fs.Parse(os.Args[1:]); err != nil {
		fail(err)
	}
	setupLogging(*level)
	for _, reg := range registrations {
		reg(c.methods)
	}

	fns := map[string]func(js.Value, []js.Value) any{
		"wasmClientIsReady":       func(js.Value, []js.Value) any { return true },
		"wasmClientConnectServer": c.connect,
		"wasmClientIsConnected":   func(js.Value, []js.Value) any { return c.connected() },
		"wasmClientDisconnect":    c.disconnect,
		"wasmClientInvokeRPC":     c.invoke,
		"wasmClientStatus":        c.statusString,
		"wasmClientGetExpiry":     func(js.Value, []js.Value) any { return nil },
		"wasmClientIsReadOnly":    func(js.Value, []js.Value) any { return false },
		"wasmClientIsCustom":      func(js.Value, []js.Value) any { return false },
		"wasmClientHasPerms":      func(js.Value, []js.Value) any { return c.hasMac() },
	}
	// Keep whatever the page already put in the namespace (lnc-web puts its
	// onLocalPrivCreate/onRemoteKeyReceive/onAuthData callbacks there first).
	obj := js.Global().Get(c.ns)
	if obj.IsUndefined() || obj.IsNull() {
		obj = js.Global().Get("Object").New()
		js.Global().Set(c.ns, obj)
	}
	for name, f := range fns {
		obj.Set(name, js.FuncOf(f))
	}
	mboxLog.Infof("wasm client ready in namespace %q", c.ns)
	select {}
}

func (c *client) connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil
}

func (c *client) hasMac() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mac != nil
}

func (c *client) statusString(js.Value, []js.Value) any {
	c.mu.Lock()
	st := c.status
	c.mu.Unlock()
	if st == nil {
		return nil
	}
	return st().String()
}

func (c *client) connect(_ js.Value, args []js.Value) any {
	if len(args) != 5 {
		return "wasmClientConnectServer needs 5 arguments: server, isDevServer, pairingPhrase, localStaticPrivKey, remoteStaticPubKey"
	}
	server, phrase := args[0].String(), args[2].String()
	localHex, remoteHex := args[3].String(), args[4].String()
	local, remote, err := c.keys(localHex, remoteHex)
	if err != nil {
		fail(err)
	}
	// The dial blocks (WebSockets, then the Noise handshake), so it must not
	// run on the JS event loop's goroutine.
	go func() {
		status, dial, err := mailbox.NewClientWebsocketConn(server, phrase, local, remote,
			func(key *btcec.PublicKey) error {
				return callJS(c.onRemoteKey, hex.EncodeToString(key.SerializeCompressed()))
			},
			func(data []byte) error {
				parts := strings.Split(string(data), ": ")
				if len(parts) != 2 || parts[0] != "Macaroon" {
					return fmt.Errorf("auth data has no macaroon")
				}
				raw, err := hex.DecodeString(parts[1])
				if err != nil {
					return err
				}
				mac := &macaroon.Macaroon{}
				if err := mac.UnmarshalBinary(raw); err != nil {
					return fmt.Errorf("unable to decode macaroon: %v", err)
				}
				c.mu.Lock()
				c.mac = mac
				c.mu.Unlock()
				return callJS(c.onAuthData, string(data))
			})
		if err != nil {
			fail(err)
		}
		c.mu.Lock()
		c.status = status
		c.mu.Unlock()
		conn, err := dial()
		if err != nil {
			fail(err)
		}
		c.mu.Lock()
		c.conn = conn
		c.mu.Unlock()
		mboxLog.Infof("wasm client connected to RPC")
	}()
	return nil
}

func (c *client) keys(localHex, remoteHex string) (keychain.SingleKeyECDH, *btcec.PublicKey, error) {
	if remoteHex != "" && localHex == "" {
		return nil, nil, fmt.Errorf("a remote key needs a local key")
	}
	var priv *btcec.PrivateKey
	if localHex == "" {
		var err error
		if priv, err = btcec.NewPrivateKey(); err != nil {
			return nil, nil, err
		}
		if err := callJS(c.onLocalPriv, hex.EncodeToString(priv.Serialize())); err != nil {
			return nil, nil, err
		}
	} else {
		b, err := hex.DecodeString(localHex)
		if err != nil {
			return nil, nil, err
		}
		priv, _ = btcec.PrivKeyFromBytes(b)
	}
	var remote *btcec.PublicKey
	if remoteHex != "" {
		b, err := hex.DecodeString(remoteHex)
		if err != nil {
			return nil, nil, err
		}
		if remote, err = btcec.ParsePubKey(b); err != nil {
			return nil, nil, err
		}
	}
	return &keychain.PrivKeyECDH{PrivKey: priv}, remote, nil
}

func (c *client) disconnect(_ js.Value, args []js.Value) any {
	c.mu.Lock()
	conn := c.conn
	c.conn = nil
	c.mu.Unlock()
	if conn == nil {
		return nil
	}
	go func() {
		if err := conn.Close(); err != nil {
			mboxLog.Errorf("closing RPC connection: %v", err)
		}
		if len(args) > 0 && args[0].Type() == js.TypeFunction {
			args[0].Invoke()
		}
	}()
	return nil
}

func (c *client) invoke(_ js.Value, args []js.Value) any {
	if len(args) != 3 {
		return "wasmClientInvokeRPC needs 3 arguments: rpcName, request, callback"
	}
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn == nil {
		return "RPC connection not ready"
	}
	name, req, cb := args[0].String(), args[1].String(), args[2]
	method, ok := c.methods[name]
	if !ok {
		return "rpc with name " + name + " not found"
	}
	go method(context.Background(), conn, req, func(resp string, err error) {
		if err != nil {
			cb.Invoke(err.Error())
			return
		}
		cb.Invoke(resp)
	})
	return nil
}

// callJS calls "fn" or "obj.fn" on the global scope; a returned {err} fails.
func callJS(name, value string) error {
	if name == "" {
		return nil
	}
	scope := js.Global()
	if i := strings.LastIndex(name, "."); i >= 0 {
		scope = scope.Get(name[:i])
		name = name[i+1:]
	}
	ret := scope.Call(name, value)
	if ret.IsUndefined() || ret.IsNull() {
		return nil
	}
	if e := ret.Get("err"); !e.IsUndefined() && !e.IsNull() {
		return fmt.Errorf("%s", e.String())
	}
	return nil
}

var mboxLog btclog.Logger

func setupLogging(level string) {
	backend := btclog.NewBackend(os.Stdout)
	lvl, ok := btclog.LevelFromString(strings.Split(level, ",")[0])
	if !ok {
		lvl = btclog.LevelInfo
	}
	mboxLog = backend.Logger("WASM")
	mboxLog.SetLevel(lvl)
	m := backend.Logger(mailbox.Subsystem)
	m.SetLevel(lvl)
	mailbox.UseLogger(m)
	g := backend.Logger(gbn.Subsystem)
	g.SetLevel(btclog.LevelInfo)
	gbn.UseLogger(g)
}

func fail(err error) {
	fmt.Printf("Error running wasm client: %v\n", err)
	os.Exit(1)
}
