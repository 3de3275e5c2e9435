// go-lnc-node is a Lightning Node Connect node side built the way Lightning
// Terminal (litd) builds one: lightning-node-connect's mailbox.NewServer as the
// net.Listener of a grpc-go server whose transport credentials are
// mailbox.NewNoiseGrpcConn. Inside the tunnel it serves an LND-shaped
// lnrpc.Lightning (lnd's own Go package) with three methods:
//
//   - GetInfo: alias "go-lnc-node".
//   - AddInvoice: echoes the memo as payment_request and value as add_index.
//   - SubscribeInvoices: streams add_index invoices whose memos are settle_index
//     bytes long (default 10), then ends.
//
// The same shapes as the Rust test node (crates/lnc-client/tests/common), so one
// test body checks either node. Every call must carry the session macaroon.
//
// litd itself is not on the Go module proxy this project uses, hence this
// program. Like litd it keeps the session (local key, pairing entropy, the app's
// static key once paired) in a state file, so after a pairing the app reconnects
// with Noise KK, also across a node restart.
//
// stdout (one line each): `READY phrase="..." local_pub=... mode=xx|kk`,
// `PAIRED remote_pub=...`, `STATUS status=...`, `CALL method=...`.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightninglabs/lightning-node-connect/mailbox"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lnc-rs/lnc-rs/interop/internal/harness"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"gopkg.in/macaroon.v2"
)

type lightning struct {
	lnrpc.UnimplementedLightningServer
	macaroonHex string
}

func (l *lightning) check(ctx context.Context, method string) error {
	harness.Emit("CALL", "method", method)
	md, _ := metadata.FromIncomingContext(ctx)
	if got := md.Get("macaroon"); len(got) != 1 || got[0] != l.macaroonHex {
		return status.Errorf(codes.Unauthenticated, "expected 1 macaroon, got %d", len(got))
	}
	return nil
}

func (l *lightning) GetInfo(ctx context.Context, _ *lnrpc.GetInfoRequest) (*lnrpc.GetInfoResponse, error) {
	if err := l.check(ctx, "GetInfo"); err != nil {
		return nil, err
	}
	return &lnrpc.GetInfoResponse{Alias: "go-lnc-node", Version: "0.16.0-beta", BlockHeight: 800_000}, nil
}

func (l *lightning) AddInvoice(ctx context.Context, inv *lnrpc.Invoice) (*lnrpc.AddInvoiceResponse, error) {
	if err := l.check(ctx, "AddInvoice"); err != nil {
		return nil, err
	}
	return &lnrpc.AddInvoiceResponse{PaymentRequest: inv.Memo, AddIndex: uint64(inv.Value)}, nil
}

func (l *lightning) SubscribeInvoices(req *lnrpc.InvoiceSubscription, s lnrpc.Lightning_SubscribeInvoicesServer) error {
	if err := l.check(s.Context(), "SubscribeInvoices"); err != nil {
		return err
	}
	size := req.SettleIndex
	if size == 0 {
		size = 10
	}
	for i := uint64(0); i < req.AddIndex; i++ {
		inv := &lnrpc.Invoice{Memo: strings.Repeat("x", int(size)), AddIndex: i}
		if err := s.Send(inv); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	mailboxAddr := flag.String("mailbox", "", "relay host:port (HashMail gRPC)")
	tlsMode := flag.String("mailbox-tls", "skip-verify", "relay TLS: skip-verify, insecure or system")
	phrase := flag.String("phrase", "", "pairing phrase (ten words); a new one is generated if empty")
	statePath := flag.String("state", "", "session state file (created if missing; keeps the app's key for KK)")
	debug := flag.String("debuglevel", "off", "lightning-node-connect log level on stderr (off, info, debug, trace)")
	flag.Parse()
	harness.SetupLogging(*debug)
	if *mailboxAddr == "" {
		harness.Fatal("flags", fmt.Errorf("--mailbox is required"))
	}

	st, err := harness.LoadState(*statePath)
	if err != nil {
		harness.Fatal("state", err)
	}
	words := *phrase
	if st == nil {
		st, words, err = harness.NewState(*phrase)
		if err != nil {
			harness.Fatal("state", err)
		}
	} else if words, err = harness.PhraseOf(st.Entropy); err != nil {
		harness.Fatal("state", err)
	}
	if st.AuthData == "" {
		// A real macaroon (gopkg.in/macaroon.v2) so apps parse it as they would
		// litd's; calls must carry it.
		root := make([]byte, 32)
		if _, err := rand.Read(root); err != nil {
			harness.Fatal("macaroon", err)
		}
		mac, err := macaroon.New(root, []byte("go-lnc-node"), "lnd", macaroon.LatestVersion)
		if err != nil {
			harness.Fatal("macaroon", err)
		}
		b, err := mac.MarshalBinary()
		if err != nil {
			harness.Fatal("macaroon", err)
		}
		st.AuthData = "Macaroon: " + hex.EncodeToString(b)
	}
	if err := st.Save(*statePath); err != nil {
		harness.Fatal("state", err)
	}
	local, remote, entropy, err := st.Keys()
	if err != nil {
		harness.Fatal("state", err)
	}
	macHex := strings.TrimPrefix(st.AuthData, "Macaroon: ")

	connData := mailbox.NewConnData(local, remote, entropy, []byte(st.AuthData),
		func(key *btcec.PublicKey) error {
			// litd stores the app's key with the session here; from now on the
			// server's SID is the KK one.
			st.RemotePub = hex.EncodeToString(key.SerializeCompressed())
			if err := st.Save(*statePath); err != nil {
				return err
			}
			harness.Emit("PAIRED", "remote_pub", st.RemotePub)
			return nil
		}, nil)

	dialOpt, err := harness.TLSMode(*tlsMode).DialOption()
	if err != nil {
		harness.Fatal("flags", err)
	}
	srv, err := mailbox.NewServer(*mailboxAddr, connData, func(s mailbox.ServerStatus) {
		harness.Emit("STATUS", "status", serverStatus(s))
	}, dialOpt)
	if err != nil {
		harness.Fatal("mailbox", err)
	}
	noise := mailbox.NewNoiseGrpcConn(connData)
	g := grpc.NewServer(grpc.Creds(noise), grpc.MaxRecvMsgSize(200<<20))
	lnrpc.RegisterLightningServer(g, &lightning{macaroonHex: macHex})

	mode := "xx"
	if remote != nil {
		mode = "kk"
	}
	harness.Emit("READY", "phrase", words,
		"local_pub", hex.EncodeToString(local.PubKey().SerializeCompressed()), "mode", mode)

	errc := make(chan error, 1)
	go func() { errc <- g.Serve(srv) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
		// g.Stop closes its listener, srv; mailbox.Server.Close is not idempotent
		// (a second close panics: "close of closed channel"), so it is not called again.
		g.Stop()
		harness.Emit("STOPPED")
	case err := <-errc:
		harness.Fatal("serve", err)
	}
}

func serverStatus(s mailbox.ServerStatus) string {
	switch s {
	case mailbox.ServerStatusNotConnected:
		return "not_connected"
	case mailbox.ServerStatusInUse:
		return "in_use"
	case mailbox.ServerStatusIdle:
		return "idle"
	default:
		return fmt.Sprintf("unknown_%d", s)
	}
}
