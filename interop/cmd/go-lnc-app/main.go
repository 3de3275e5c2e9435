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
//
// Payment mode (--pay): after GetInfo, each comma-separated BOLT11 invoice is paid with
// routerrpc SendPaymentV2 (--fee-limit-sat), then the run ends: `PAYMENT status=SUCCEEDED|
// FAILED value_msat=... fee_msat=...` or, when the call is refused,
// `PAYMENT status=REFUSED code=... msg=...`; then `DONE`.
//
// Benchmark modes (the same-run comparison with our Rust stack):
//   - --unary-calls N: after the stream, N sequential GetInfo calls;
//     `UNARY n=N p50_us=... p99_us=...`.
//   - --bulk-items N --bulk-size B: one SubscribeInvoices of N items with B-byte
//     memos; `BULK bytes=... ms=...`.
//   - --report-rss: after the stream, `RSS kb=...` (VmRSS from /proc/self/status: the
//     app's resident memory after pairing and its first calls).
//   - --scrypt N: no connection; N pairing-phrase stretches with the parameters
//     lightning-node-connect uses (x/crypto/scrypt, N=2^16, r=8, p=1, 32 bytes);
//     `SCRYPT n=N ms_each=...`.
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightninglabs/lightning-node-connect/mailbox"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lnc-rs/lnc-rs/interop/internal/harness"
	"golang.org/x/crypto/scrypt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
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
	unaryCalls := flag.Int("unary-calls", 0, "benchmark: sequential GetInfo calls after the stream")
	bulkItems := flag.Uint64("bulk-items", 0, "benchmark: items of one SubscribeInvoices after the stream")
	bulkSize := flag.Uint64("bulk-size", 1000, "benchmark: memo bytes per bulk item")
	reportRSS := flag.Bool("report-rss", false, "benchmark: print the process's resident memory after the stream")
	scryptN := flag.Int("scrypt", 0, "benchmark: time this many phrase stretches and exit")
	pay := flag.String("pay", "", "comma-separated BOLT11 invoices to pay with SendPaymentV2 after GetInfo, then exit")
	feeLimitSat := flag.Int64("fee-limit-sat", 0, "--pay: each payment's fee limit")
	flag.Parse()
	harness.SetupLogging(*debug)
	if *scryptN > 0 {
		benchScrypt(*scryptN)
		return
	}
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
	if *pay != "" {
		router := routerrpc.NewRouterClient(conn)
		for _, pr := range strings.Split(*pay, ",") {
			payInvoice(cctx, router, pr, *feeLimitSat)
		}
		if err := conn.Close(); err != nil {
			harness.Fatal("close", err)
		}
		harness.Emit("DONE")
		return
	}

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
	if *reportRSS {
		kb, err := rssKB()
		if err != nil {
			harness.Fatal("rss", err)
		}
		harness.Emit("RSS", "kb", fmt.Sprint(kb))
	}

	if *unaryCalls > 0 {
		lat := make([]time.Duration, 0, *unaryCalls)
		for i := 0; i < *unaryCalls; i++ {
			t := time.Now()
			if _, err := ln.GetInfo(cctx, &lnrpc.GetInfoRequest{}); err != nil {
				harness.Fatal("unary", err)
			}
			lat = append(lat, time.Since(t))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		harness.Emit("UNARY", "n", fmt.Sprint(len(lat)),
			"p50_us", fmt.Sprint(lat[len(lat)/2].Microseconds()),
			"p99_us", fmt.Sprint(lat[len(lat)*99/100].Microseconds()))
	}
	if *bulkItems > 0 {
		t := time.Now()
		bulk, err := ln.SubscribeInvoices(cctx, &lnrpc.InvoiceSubscription{
			AddIndex: *bulkItems, SettleIndex: *bulkSize})
		if err != nil {
			harness.Fatal("bulk", err)
		}
		var bytes int
		for {
			item, err := bulk.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				harness.Fatal("bulk", err)
			}
			bytes += len(item.Memo)
		}
		harness.Emit("BULK", "bytes", fmt.Sprint(bytes), "ms", fmt.Sprint(time.Since(t).Milliseconds()))
	}

	if err := conn.Close(); err != nil {
		harness.Fatal("close", err)
	}
	harness.Emit("DONE")
}

// payInvoice pays one invoice with SendPaymentV2 and reports its final state, or the
// status the call was refused with (at the stream's first receive: grpc-go returns a
// server stream before its headers).
func payInvoice(ctx context.Context, router routerrpc.RouterClient, pr string, feeLimitSat int64) {
	refused := func(err error) {
		st := status.Convert(err)
		harness.Emit("PAYMENT", "status", "REFUSED", "code", st.Code().String(), "msg", st.Message())
	}
	stream, err := router.SendPaymentV2(ctx, &routerrpc.SendPaymentRequest{
		PaymentRequest: pr, FeeLimitSat: feeLimitSat, TimeoutSeconds: 30,
	})
	if err != nil {
		refused(err)
		return
	}
	for {
		p, err := stream.Recv()
		if err != nil {
			refused(err)
			return
		}
		if p.Status == lnrpc.Payment_SUCCEEDED || p.Status == lnrpc.Payment_FAILED {
			harness.Emit("PAYMENT", "status", p.Status.String(),
				"value_msat", fmt.Sprint(p.ValueMsat), "fee_msat", fmt.Sprint(p.FeeMsat))
			return
		}
	}
}

// rssKB reads the process's resident set size (VmRSS, KiB) from /proc/self/status.
func rssKB() (uint64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/self/status")
}

// benchScrypt times n stretches of a 14-byte phrase entropy the way
// lightning-node-connect's stretchPassphrase does (its function is unexported; the
// parameters are its constants, the salt is the entropy itself, the library is the one
// it links).
func benchScrypt(n int) {
	entropy := make([]byte, 14)
	start := time.Now()
	for i := 0; i < n; i++ {
		entropy[0] = byte(i)
		if _, err := scrypt.Key(entropy, entropy, 1<<16, 8, 1, 32); err != nil {
			harness.Fatal("scrypt", err)
		}
		// stretchPassphrase frees the 64 MiB scrypt buffer at once; so do we.
		debug.FreeOSMemory()
	}
	harness.Emit("SCRYPT", "n", fmt.Sprint(n),
		"ms_each", fmt.Sprintf("%.1f", float64(time.Since(start).Microseconds())/1000/float64(n)))
}
