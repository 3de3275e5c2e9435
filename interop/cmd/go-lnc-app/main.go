// go-lnc-app is a Lightning Node Connect app on lightning-node-connect's own Go
// client (mailbox.NewGrpcClient / mailbox.NewWebsocketsClient, grpc-go with
// mailbox.NewNoiseGrpcConn as transport and per-RPC credentials), the code
// lnc-web's wasm client runs.
//
// One run: connect (Noise XX with --phrase if the state file holds no node key,
// else Noise KK with the stored keys), then GetInfo, AddInvoice and a
// SubscribeInvoices stream of --stream-n items, then close. Running it again with
// the same --state is an app restart: it reconnects with KK.
//
// stdout: `CONNECTED mode=xx|kk ms=...`, `GETINFO alias=...`,
// `ADDINVOICE payment_request=... add_index=...`, `STREAM n=...`, `DONE`; on a
// failure `ERROR step=... msg=...` and exit status 1.
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightninglabs/lightning-node-connect/mailbox"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lnc-rs/lnc-rs/interop/internal/harness"
	"google.golang.org/grpc"
)

func main() {
	mailboxAddr := flag.String("mailbox", "", "relay host:port")
	transport := flag.String("transport", "grpc", "relay transport: grpc or ws (WebSocket, always wss://)")
	tlsMode := flag.String("mailbox-tls", "skip-verify", "relay TLS: skip-verify, insecure (grpc only) or system")
	phrase := flag.String("phrase", "", "pairing phrase (ten words), needed until the state file holds the node's key")
	statePath := flag.String("state", "", "state file: our key, the node's key and auth data after pairing")
	wait := flag.Duration("wait", 60*time.Second, "how long to wait for the connection")
	streamN := flag.Uint64("stream-n", 3, "SubscribeInvoices items to expect")
	debug := flag.String("debuglevel", "off", "lightning-node-connect log level on stderr")
	flag.Parse()
	harness.SetupLogging(*debug)
	if *mailboxAddr == "" {
		harness.Fatal("flags", fmt.Errorf("--mailbox is required"))
	}

	st, err := harness.LoadState(*statePath)
	if err != nil {
		harness.Fatal("state", err)
	}
	if st == nil || st.RemotePub == "" {
		if *phrase == "" {
			harness.Fatal("flags", fmt.Errorf("--phrase is required until the state file holds the node's key"))
		}
		if st, _, err = harness.NewState(*phrase); err != nil {
			harness.Fatal("state", err)
		}
	}
	local, remote, entropy, err := st.Keys()
	if err != nil {
		harness.Fatal("state", err)
	}
	mode := "xx"
	if remote != nil {
		mode = "kk"
	}

	connData := mailbox.NewConnData(local, remote, entropy, nil,
		func(key *btcec.PublicKey) error {
			st.RemotePub = hex.EncodeToString(key.SerializeCompressed())
			return st.Save(*statePath)
		},
		func(data []byte) error {
			st.AuthData = string(data)
			return st.Save(*statePath)
		})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dialOpt, err := harness.TLSMode(*tlsMode).DialOption()
	if err != nil {
		harness.Fatal("flags", err)
	}
	var client *mailbox.Client
	switch *transport {
	case "grpc":
		client, err = mailbox.NewGrpcClient(ctx, *mailboxAddr, connData, dialOpt)
	case "ws":
		client, err = mailbox.NewWebsocketsClient(ctx, *mailboxAddr, connData)
	default:
		err = fmt.Errorf("unknown --transport %q (grpc, ws)", *transport)
	}
	if err != nil {
		harness.Fatal("mailbox", err)
	}

	noise := mailbox.NewNoiseGrpcConn(connData)
	start := time.Now()
	dctx, dcancel := context.WithTimeout(ctx, *wait)
	defer dcancel()
	conn, err := grpc.DialContext(dctx, *mailboxAddr,
		grpc.WithContextDialer(client.Dial),
		grpc.WithTransportCredentials(noise),
		grpc.WithPerRPCCredentials(noise),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(200<<20)),
		grpc.WithBlock(),
	)
	if err != nil {
		harness.Fatal("connect", fmt.Errorf("%w (mailbox status: %v)", err, client.ConnStatus()))
	}
	harness.Emit("CONNECTED", "mode", mode, "ms", fmt.Sprint(time.Since(start).Milliseconds()))
	ln := lnrpc.NewLightningClient(conn)

	cctx, ccancel := context.WithTimeout(ctx, *wait)
	defer ccancel()
	info, err := ln.GetInfo(cctx, &lnrpc.GetInfoRequest{})
	if err != nil {
		harness.Fatal("getinfo", err)
	}
	harness.Emit("GETINFO", "alias", info.Alias)

	inv, err := ln.AddInvoice(cctx, &lnrpc.Invoice{Memo: "call-7", Value: 7})
	if err != nil {
		harness.Fatal("addinvoice", err)
	}
	harness.Emit("ADDINVOICE", "payment_request", inv.PaymentRequest,
		"add_index", fmt.Sprint(inv.AddIndex))

	sub, err := ln.SubscribeInvoices(cctx, &lnrpc.InvoiceSubscription{AddIndex: *streamN})
	if err != nil {
		harness.Fatal("subscribe", err)
	}
	var n uint64
	for {
		item, err := sub.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			harness.Fatal("subscribe", err)
		}
		if item.AddIndex != n {
			harness.Fatal("subscribe", fmt.Errorf("item %d has add_index %d", n, item.AddIndex))
		}
		n++
	}
	harness.Emit("STREAM", "n", fmt.Sprint(n))

	if err := conn.Close(); err != nil {
		harness.Fatal("close", err)
	}
	harness.Emit("DONE")
}
